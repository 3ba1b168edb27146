"""The explorer page in a real headless browser: clicking a pixel changes the maps, the controls
choose the precomputed variants, the counts the page prints are the library's (weight != 0 in
float64, before any rounding), and the maps it shows are the library's query_maps.

Needs the system chromium + chromedriver (Debian: `apt-get install chromium chromium-driver`) and
selenium (`pip install -e .[browser]`); CI installs both. Most checks use a small page (an 8 x 8
photo); one builds the docs' 32 x 32 page to check the counts the issue quotes.
"""

import re
import time

import numpy as np
import pytest
import torch

from comparisons.figures.explore_command import render
from comparisons.figures.explorer import CONVNN_KS, EXPLORER_TEMPERATURES, HYBRID_LAMBDAS, page_data, views
from comparisons.figures.photo import load_photo
from comparisons.figures.setting import Setting

SETTING = Setting(size=8)
STEP = 2
MAX_BYTES = 5_000_000


def _write(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("explorer") / "explorer.html"
    path.write_text(render(data), encoding="utf-8")
    return path, data


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    return _write(tmp_path_factory, page_data(SETTING, STEP))


@pytest.fixture(scope="module")
def photo_page(tmp_path_factory):
    """The 32 x 32 page, its grid through (21, 9)."""
    return _write(tmp_path_factory, page_data(Setting(), 2, query=(21, 9)))


def test_page_is_self_contained(page):
    path, data = page
    html = path.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "the page loads something from a network"
    assert "fetch(" not in html and "XMLHttpRequest" not in html
    variants = 1 + 2 * len(CONVNN_KS) + len(CONVNN_KS) * len(HYBRID_LAMBDAS) + 4 + 3 * len(EXPLORER_TEMPERATURES)
    assert len(data["queries"]) == 16 and len(data["panels"]) == variants
    assert tuple(data["default_query"]) == SETTING.pixel in {tuple(q) for q in data["queries"]}


def test_the_docs_page_fits_and_opens_on_the_figures_query(photo_page):
    path, data = photo_page
    assert path.stat().st_size <= MAX_BYTES, f"{path.stat().st_size / 1e6:.1f} MB"
    assert len(data["queries"]) == 16 * 16


@pytest.fixture(scope="module")
def browser(headless_chromium):
    return headless_chromium("the explorer", window="1300,1100")


def _open(driver, path):
    driver.get(path.as_uri())
    deadline = time.monotonic() + 20
    while not driver.execute_script("return document.body.dataset.ready"):
        assert time.monotonic() < deadline, "the page did not finish decoding its maps"
        time.sleep(0.05)


def _layer(view_key, **params):
    """The layer behind a view at ``params``, built the way the page's panels were."""
    view = next(v for v in views() if v.key == view_key)
    params_, build, slot = next(var for var in view.variants if var[0] == params)
    return build(), slot


def _library_map(setting, view_key, pixel, **params):
    """The same map computed in Python, straight from the layer."""
    layer, slot = _layer(view_key, **params)
    with torch.no_grad():
        nbhd = layer.neighborhood(load_photo(setting.image, setting.size).features)
        return nbhd.query_map(nbhd.query_at(pixel), slot=slot).numpy()


def _canvas(driver, view):
    return driver.execute_script(f"return document.querySelector('[data-view=\"{view}\"] canvas').toDataURL()")


def _shown(driver, view, side):
    return np.array(driver.execute_script(f"return window.explorer.weights('{view}')")).reshape(side, side)


def _query(driver):
    return tuple(int(v) for v in driver.execute_script("return document.body.dataset.query").split(","))


def _params(driver):
    return {name: driver.execute_script(f"return window.explorer.state['{name}']") for name in ("k", "lambda", "t")}


def _check_view(driver, setting, view):
    params = {name: _params(driver)[name] for name in next(v for v in views() if v.key == view).variants[0][0]}
    expected = _library_map(setting, view, _query(driver), **params)
    np.testing.assert_allclose(_shown(driver, view, setting.size), expected, atol=expected.max() / 255 + 1e-7)
    count = driver.execute_script(f"return document.querySelector('[data-view=\"{view}\"]').dataset.count")
    assert int(count) == int((expected != 0).sum()), view


def test_counts_are_the_librarys_at_21_9(photo_page, browser):
    """Non-local 1024 and criss-cross 63 at (21, 9): no pixel lost to 8-bit rounding."""
    path, _ = photo_page
    _open(browser, path)
    assert _query(browser) == (21, 9)
    counts = {v.key: int(browser.execute_script(f"return window.explorer.count('{v.key}')")) for v in views()}
    assert counts["non_local_block2d_gaussian"] == 1024 and counts["self_attention2d"] == 1024
    assert counts["criss_cross_attention2d"] == 63 and counts["neighborhood_attention2d"] == 49
    assert counts["conv2d"] == 9 and counts["conv_nn2d"] == 9
    for v in views():
        _check_view(browser, Setting(), v.key)
    text = browser.find_element("css selector", '[data-view="criss_cross_attention2d"] .info').text
    assert text.startswith("reads 63 of 1024 pixels")


def test_clicking_a_pixel_changes_the_maps(page, browser):
    from selenium.webdriver.common.action_chains import ActionChains

    path, data = page
    _open(browser, path)
    start = _query(browser)
    assert start == SETTING.pixel  # the figures' default query, on the grid
    before = {k: _canvas(browser, k) for k in ("conv2d", "self_attention2d")}
    _check_view(browser, SETTING, "conv2d")

    # click the top-left precomputed pixel: its centre, in CSS pixels from the canvas centre
    first = tuple(data["queries"][0])
    photo = browser.find_element("id", "photo")
    dx = (first[1] + 0.5) / 8 * photo.size["width"] - photo.size["width"] / 2
    dy = (first[0] + 0.5) / 8 * photo.size["height"] - photo.size["height"] / 2
    ActionChains(browser).move_to_element_with_offset(photo, int(dx), int(dy)).click().perform()
    assert _query(browser) == first != start
    for key, old in before.items():
        assert _canvas(browser, key) != old, f"the {key} panel did not change after the click"
    for v in views():
        _check_view(browser, SETTING, v.key)
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


def _slide(driver, name, index):
    driver.execute_script(f"const s = document.getElementById('{name}'); s.value = '{index}';"
                          "s.dispatchEvent(new Event('input'));")


def test_controls_choose_the_precomputed_variants(page, browser):
    path, _ = page
    _open(browser, path)
    keys = browser.execute_script("return window.explorer.panelKeys()")
    assert "conv_nn2d|k=9" in keys and "conv_nn2d_hybrid|k=9|lambda=0.5" in keys and "n3_slot0|t=1" in keys
    conv, n3, nn = (_canvas(browser, v) for v in ("conv2d", "n3_slot0", "conv_nn2d_location"))
    _slide(browser, "t", len(EXPLORER_TEMPERATURES) - 1)  # the coldest temperature
    assert float(browser.execute_script("return document.body.dataset.temperature")) == EXPLORER_TEMPERATURES[-1]
    assert _canvas(browser, "n3_slot0") != n3 and _canvas(browser, "conv2d") == conv
    _check_view(browser, SETTING, "n3_slot0")
    _slide(browser, "k", CONVNN_KS.index(25))
    _slide(browser, "lambda", 0)
    assert _params(browser)["k"] == 25 and _params(browser)["lambda"] == HYBRID_LAMBDAS[0]
    assert _canvas(browser, "conv_nn2d_location") != nn and _canvas(browser, "conv2d") == conv
    for view in ("conv_nn2d", "conv_nn2d_location", "conv_nn2d_hybrid"):
        _check_view(browser, SETTING, view)
    assert int(browser.execute_script("return window.explorer.count('conv_nn2d_location')")) == 25


def test_difference_view_and_shared_scale(page, browser):
    from selenium.webdriver.support.ui import Select

    path, _ = page
    _open(browser, path)
    Select(browser.find_element("id", "diff-a")).select_by_value("conv_nn2d_location")
    Select(browser.find_element("id", "diff-b")).select_by_value("conv2d")
    info = browser.find_element("css selector", '[data-view="diff"] .info').text
    assert info.endswith("(the same map)"), info  # location ConvNN k = 9 is Conv2d 3x3
    Select(browser.find_element("id", "diff-b")).select_by_value("self_attention2d")
    assert "(the same map)" not in browser.find_element("css selector", '[data-view="diff"] .info').text
    tick = 'return document.querySelector(\'[data-view="self_attention2d"] .ticks\').lastElementChild.textContent'
    own = float(browser.execute_script(tick))
    browser.find_element("id", "shared").click()
    assert float(browser.execute_script(tick)) == 1.0 > own  # the hard panels' weight 1 tops the shared scale
