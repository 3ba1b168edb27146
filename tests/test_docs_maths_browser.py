"""The docs site's maths renders in a real headless browser with the network off.

The site is built (`mkdocs build --strict`) into a temporary folder and opened from disk
(file://) in a chromium that resolves no host name and is switched offline through the
DevTools protocol. On every page with maths, each formula that `pymdownx.arithmatex` left must
have been typeset by the KaTeX copy the site serves itself (a `.katex` element of non-zero
size, no `.katex-error`), KaTeX's fonts must have loaded, and every resource the page
requested must be a local file.

Needs the docs extra (`pip install -e .[docs]`), selenium (`.[browser]`) and the system
chromium + chromedriver (Debian: `apt-get install chromium chromium-driver`); CI has all.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
#: pages whose maths is checked: every docs page with a $...$ formula (the test fails if one is missed)
MATHS_PAGES = sorted(p.stem for p in (ROOT / "docs").glob("*.md") if "$" in p.read_text())


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None:
        pytest.skip("the docs extra is not installed (pip install -e .[docs]); the site's maths is not checked")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                            cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def offline_browser(headless_chromium):
    # no host name resolves: a page that asks a CDN for anything gets nothing
    driver = headless_chromium("the docs' maths", flags=("--host-resolver-rules=MAP * ~NOTFOUND",))
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions",
                           {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    return driver


def test_the_maths_pages_are_found():
    """The pages that carry the converted formulas (the glob above would silently shrink otherwise)."""
    assert {"attention", "convolution", "n3", "spectral"} <= set(MATHS_PAGES), MATHS_PAGES


@pytest.mark.parametrize("page", MATHS_PAGES)
def test_formulas_render_offline(site, offline_browser, page):
    from selenium.webdriver.support.ui import WebDriverWait

    driver = offline_browser
    driver.get((site / ("" if page == "index" else page) / "index.html").as_uri())   # index.md is the site root
    WebDriverWait(driver, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")
    state = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        document.fonts.ready.then(() => {
          const maths = [...document.querySelectorAll('.arithmatex')];
          const sizes = maths.map(el => {
            const k = el.querySelector('.katex');
            if (!k) return null;
            const r = k.getBoundingClientRect();
            return [r.width, r.height];
          });
          done({
            count: maths.length,
            display: document.querySelectorAll('div.arithmatex .katex-display').length,
            sizes: sizes,
            errors: [...document.querySelectorAll('.katex-error')].map(e => e.textContent.slice(0, 200)),
            overflowing: [...document.querySelectorAll('div.arithmatex')]
              .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent.slice(0, 80)),
            katexFont: [...document.fonts].some(f => f.family.replace(/["']/g, '') === 'KaTeX_Main'
                                                  && f.status === 'loaded'),
            resources: performance.getEntriesByType('resource').map(e => e.name),
            linked: [...document.querySelectorAll('script[src], link[href], img[src]')].map(e => e.src || e.href),
            katexVersion: typeof katex === 'undefined' ? null : katex.version,
            url: location.href,
          });
        });
    """)
    assert state["url"].startswith("file://")
    assert state["count"] > 0, f"{page}: no formula found on the built page"
    assert not state["errors"], f"{page}: KaTeX could not typeset: {state['errors']}"
    assert None not in state["sizes"], f"{page}: {state['sizes'].count(None)} formulas were left as text"
    assert all(w > 0 and h > 0 for w, h in state["sizes"]), f"{page}: a formula rendered with zero size"
    if "$$" in (ROOT / "docs" / f"{page}.md").read_text():
        assert state["display"] > 0, f"{page}: its display formulas did not render as display maths"
    # at a 1200 px window no display formula is wider than the text column (no sideways scrolling)
    assert not state["overflowing"], f"{page}: display formulas wider than the page: {state['overflowing']}"
    assert state["katexFont"], f"{page}: KaTeX's fonts did not load from the site"
    # chromium lists no timing entry for a file:// load, but does for every request that left the machine
    remote = [r for r in state["resources"] + state["linked"] if not r.startswith("file:")]
    assert not remote, f"{page} requested resources from outside the site: {remote}"
    assert state["katexVersion"], f"{page}: the site's KaTeX did not load"
