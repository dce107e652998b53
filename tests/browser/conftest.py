"""Real-browser tests: Debian's headless Chromium (``/usr/bin/chromium``) driven by Playwright
for Python, against the bridge served over HTTP with a worker and the fake providers.

Without Chromium (or Playwright) the tests are not skipped: each one errors, and the test
summary says ``browser tests: NOT RUN: <why>``. ``./scripts/test`` installs Chromium with
apt-get when it runs as root. Screenshots of every page go to ``reports/screenshots/``
(git-ignored), at 1280 and 390 pixels wide."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import PADDLE_SECRET, STRIPE_SECRET, test_settings
from tests.support.console import Seeder
from tests.e2e.test_refund_flow import fakes  # noqa: F401 - the fixture
from tests.support.harness import Shop

CHROMIUM = Path(os.environ.get("BRIDGE_CHROMIUM", "/usr/bin/chromium"))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(__file__).resolve().parents[2] / "reports" / "screenshots"
WIDE, NARROW = {"width": 1280, "height": 900}, {"width": 390, "height": 844}

_state = {"problem": None, "ran": 0}


def chromium_problem() -> str | None:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"no chromium at {CHROMIUM} (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    return None


def pytest_terminal_summary(terminalreporter):
    if _state["problem"]:
        terminalreporter.write_line(f"browser tests: NOT RUN: {_state['problem']}", red=True, bold=True)
    elif _state["ran"]:
        terminalreporter.write_line(f"browser tests: ran in {CHROMIUM} (screenshots in {SHOTS})")


@pytest.fixture(scope="session")
def browser():
    problem = chromium_problem()
    if problem:
        _state["problem"] = problem
        pytest.fail(f"browser tests: NOT RUN: {problem}", pytrace=False)
    from playwright.sync_api import sync_playwright
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    _state["ran"] += 1
    context = browser.new_context(viewport=WIDE)
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    yield pg
    context.close()


def _shop(db_url, tmp_path, fakes, **overrides):
    stripe, paddle = fakes
    s = Shop(test_settings(db_url, tmp_path, stripe_api_base=stripe.url, paddle_api_base=paddle.url,
                           refund_poll_seconds=3600, **overrides))
    for fake, secret, path in ((stripe, STRIPE_SECRET, "/webhooks/stripe"), (paddle, PADDLE_SECRET, "/webhooks/paddle")):
        fake.webhook_url, fake.webhook_secret = s.url + path, secret
    return s


@pytest.fixture
def shop(db_url, tmp_path, fakes):
    s = _shop(db_url, tmp_path, fakes)
    yield s
    s.close()


@pytest.fixture
def make_shop(db_url, tmp_path, fakes):
    made = []

    def make(**overrides):
        s = _shop(db_url, tmp_path, fakes, **overrides)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


def seeder_for(shop, fakes) -> Seeder:
    return Seeder(shop.app.test_client(), shop.rt, shop.drain, fake_stripe=fakes[0])


def shot(page, name: str, request) -> None:
    """Screenshots of the page as it is, wide and phone-width (named after the test and the backend)."""
    backend = "pg" if "postgresql" in request.node.name else "sqlite"
    for label, size in (("1280", WIDE), ("390", NARROW)):
        page.set_viewport_size(size)
        # A <picture> picks its phone-width chart on resize: wait until every image has loaded.
        # (Polled from here: the page's CSP forbids the string evaluation wait_for_function uses.)
        for _ in range(50):
            page.wait_for_timeout(100)
            if page.evaluate("() => Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"):
                break
        page.screenshot(path=str(SHOTS / f"{name}-{label}-{backend}.png"), full_page=True)
    page.set_viewport_size(WIDE)


def sign_in(page, base: str, tok: str) -> None:
    """By keyboard only: the token field has focus on load; Enter submits."""
    # Browsers apply autofocus at the next rendering update after load, not at load itself:
    # on a busy machine the first look can come before it (polled: the CSP forbids wait_for_function).
    focused = ""
    for _ in range(50):
        focused = page.evaluate("document.activeElement ? document.activeElement.id : ''")
        if focused == "token":
            break
        page.wait_for_timeout(100)
    assert focused == "token"
    page.keyboard.type(tok)
    with page.expect_navigation():
        page.keyboard.press("Enter")

