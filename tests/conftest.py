import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def headless_chromium():
    """A factory for headless chromium drivers (system chromium + chromedriver, selenium offline).

    ``headless_chromium(what, window="1200,1000", flags=())`` skips, naming ``what`` is not
    checked, where the browser or selenium is missing; every driver made is closed at the end.
    """
    import os
    import shutil
    import tempfile

    made = []

    def make(what: str, window: str = "1200,1000", flags: tuple[str, ...] = ()):
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        chromedriver = shutil.which("chromedriver")
        if chromium is None or chromedriver is None:
            pytest.skip("no system chromium/chromedriver installed (Debian: apt-get install chromium chromium-driver); "
                        f"{what} is not checked in a browser here")
        webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e .[browser])")
        from selenium.webdriver.chrome.service import Service

        os.environ.setdefault("SE_OFFLINE", "true")  # never let selenium download a browser or a driver
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        profile = tempfile.mkdtemp(prefix="neighbor-zoo-chromium-")
        for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--no-first-run", "--disable-sync", f"--user-data-dir={profile}",
                     f"--window-size={window}", *flags):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(chromedriver))
        made.append((driver, profile))
        return driver

    yield make
    for driver, profile in made:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
