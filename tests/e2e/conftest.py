"""Browser fixtures for the end-to-end tests: Debian's Chromium driven by Playwright (sync API).

Nothing here skips: when Chromium or Playwright is missing, the tests error out loudly.
"""

import os
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
STEP_TIMEOUT_MS = 5_000
NAVIGATION_TIMEOUT_MS = 10_000
SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "screenshots"


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module, closed after it.

    Playwright's sync API keeps an asyncio event loop running in this thread; Django's ORM would
    then refuse to be called from the test body and from the database teardown
    (SynchronousOnlyOperation). The test code is plain synchronous code, so that check is turned
    off for as long as the browser lives, and only then (hence module, not session, scope).
    """
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                yield browser
            finally:
                browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def new_context(browser):
    """Factory of isolated browser contexts (one per person), all closed after the test.

    Contexts run an English-language browser (Accept-Language: en-US), as most visitors do: the
    portal must still answer in Japanese until the visitor or the account chooses otherwise.
    Timeouts are short so that a broken step fails within seconds instead of hanging the suite.
    """
    contexts = []

    def make(**kwargs):
        options = {"locale": "en-US", "timezone_id": "Asia/Tokyo", "viewport": {"width": 1280, "height": 900}}
        options.update(kwargs)
        context = browser.new_context(**options)
        context.set_default_timeout(STEP_TIMEOUT_MS)
        context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def screenshot(request):
    """``screenshot(page, "name")`` saves screenshots/<test>/<n>-name.png when E2E_SCREENSHOTS=1.

    Each test's folder is emptied first, so that it shows only the latest run.
    """
    enabled = os.environ.get("E2E_SCREENSHOTS") == "1"
    folder = SCREENSHOT_DIR / request.node.name.removeprefix("test_")
    counter = {"n": 0}
    if enabled:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.png"):
            old.unlink()

    def take(page, name: str) -> None:
        if not enabled:
            return
        counter["n"] += 1
        page.screenshot(path=str(folder / f"{counter['n']:02d}-{name}.png"), full_page=True)

    return take
