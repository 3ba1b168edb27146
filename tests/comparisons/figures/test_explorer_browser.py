"""The explorer page in a real headless browser: clicking a pixel changes the maps, the slider
changes N3's temperature, and the maps the page shows are the library's query_maps.

Needs the system chromium + chromedriver (Debian: `apt-get install chromium chromium-driver`) and
selenium (`pip install -e .[browser]`); CI installs both. The page is built small (an 8 x 8 photo)
so that the test stays quick.
"""

import os
import re
import shutil
import tempfile

import numpy as np
import pytest
import torch

from comparisons.figures.demos import build
from comparisons.figures.explore_command import render
from comparisons.figures.explorer import page_data
from comparisons.figures.photo import load_photo
from comparisons.figures.setting import Setting

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
SETTING = Setting(size=8)
STEP = 2


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    data = page_data(SETTING, STEP)
    path = tmp_path_factory.mktemp("explorer") / "explorer.html"
    path.write_text(render(data), encoding="utf-8")
    return path, data


def test_page_is_self_contained(page):
    path, data = page
    html = path.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "the page loads something from a network"
    assert "fetch(" not in html and "XMLHttpRequest" not in html
    assert len(data["queries"]) == 16 and len(data["panels"]) == 7 + 4 * 3  # 7 operators, N3: 4 t x 3 volumes


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("no system chromium/chromedriver installed (Debian: apt-get install chromium chromium-driver); "
                    "the explorer is not tested in a browser here")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e .[browser])")
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let selenium download a browser or a driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="explorer-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", f"--user-data-dir={profile}",
                 "--window-size=1300,1100"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _library_map(name, pixel, slot=None, temperature=None):
    """The same map computed in Python, straight from the layer."""
    from comparisons.figures.demos import n3_demo

    x = load_photo(SETTING.image, SETTING.size).features
    layer = build(name, 3) if temperature is None else n3_demo(3, temperature).double().eval()
    with torch.no_grad():
        nbhd = layer.neighborhood(x)
        return nbhd.query_map(nbhd.query_at(pixel), slot=slot).numpy()


def _canvas(driver, key):
    return driver.execute_script(
        f"return document.querySelector('[data-panel=\"{key}\"] canvas').toDataURL()")


def test_clicking_a_pixel_changes_the_maps(page, browser):
    from selenium.webdriver.common.action_chains import ActionChains

    path, data = page
    browser.get(path.as_uri())
    first = tuple(data["queries"][0])
    start = browser.execute_script("return document.body.dataset.query")
    # the default query pixel, snapped to the nearest precomputed one (the first of equals)
    r0, c0 = SETTING.pixel
    snapped = min(data["queries"], key=lambda q: (q[0] - r0) ** 2 + (q[1] - c0) ** 2)
    assert start == "{},{}".format(*snapped)
    before = {k: _canvas(browser, k) for k in ("conv2d", "self_attention2d")}
    start_pixel = tuple(int(v) for v in start.split(","))
    shown = np.array(browser.execute_script("return window.explorer.weights('conv2d')")).reshape(8, 8)
    np.testing.assert_allclose(shown, _library_map("conv2d", start_pixel), atol=1 / 255)

    # click the top-left precomputed pixel: its centre, in CSS pixels from the canvas centre
    photo = browser.find_element("id", "photo")
    side = photo.size["width"]
    dx = (first[1] + 0.5) / 8 * side - side / 2
    dy = (first[0] + 0.5) / 8 * photo.size["height"] - photo.size["height"] / 2
    ActionChains(browser).move_to_element_with_offset(photo, int(dx), int(dy)).click().perform()
    assert browser.execute_script("return document.body.dataset.query") == "{},{}".format(*first) != start
    for key, old in before.items():
        assert _canvas(browser, key) != old, f"the {key} panel did not change after the click"
    for key in ("conv2d", "conv_nn2d", "self_attention2d", "criss_cross_attention2d"):
        shown = np.array(browser.execute_script(f"return window.explorer.weights('{key}')")).reshape(8, 8)
        expected = _library_map(key, first)
        np.testing.assert_allclose(shown, expected, atol=expected.max() / 255 + 1e-7)
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


def test_temperature_slider_changes_only_n3(page, browser):
    from selenium.webdriver.common.keys import Keys

    path, data = page
    browser.get(path.as_uri())
    n3_panel = browser.execute_script("return window.explorer.panelKeys()")[-3]
    assert n3_panel == "n3_t0_slot0"
    conv, n3 = _canvas(browser, "conv2d"), _canvas(browser, n3_panel)
    slider = browser.find_element("id", "temperature")
    slider.click()
    slider.send_keys(Keys.END)  # the coldest temperature
    coldest = data["temperatures"][-1]
    assert float(browser.execute_script("return document.body.dataset.temperature")) == coldest
    cold_key = f"n3_t{len(data['temperatures']) - 1}_slot0"
    assert browser.execute_script("return window.explorer.panelKeys()")[-3] == cold_key
    assert _canvas(browser, cold_key) != n3
    assert _canvas(browser, "conv2d") == conv
    pixel = tuple(int(v) for v in browser.execute_script("return document.body.dataset.query").split(","))
    shown = np.array(browser.execute_script(f"return window.explorer.weights('{cold_key}')")).reshape(8, 8)
    expected = _library_map("n3_block2d", pixel, slot=0, temperature=coldest)
    np.testing.assert_allclose(shown, expected, atol=expected.max() / 255 + 1e-7)
