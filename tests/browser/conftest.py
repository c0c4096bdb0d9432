"""Browser tests: the real app under uvicorn on a free loopback port, driven in Debian's headless Chromium."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser.drawing import ONE, draw, open_digits_page, wait_for_guess
from tests.conftest import free_port, wait_until_up

CHROMIUM = os.environ.get("CONVSCOPE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    # a synthetic camera (a moving test pattern) for the playground's live filter; permission is per context
    "--use-fake-device-for-media-stream",
]
ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "test-results"


@pytest.fixture(scope="session")
def server_url(tmp_path_factory):
    """`convscope serve` as the README starts it (one web worker here, and its training worker)."""
    port = free_port()
    data_dir = tmp_path_factory.mktemp("browser-data")
    env = {**os.environ, "CONVSCOPE_LOG_LEVEL": "warning", "CONVSCOPE_DATA_DIR": str(data_dir)}
    env["CONVSCOPE_MAX_JOBS_PER_CLIENT"] = "20"  # every test's jobs come from one address
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=ROOT,
        env=env,
        start_new_session=True,  # its own process group: stopping it stops its training worker too
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url, process, seconds=30)
    yield url
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=20)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: scripts/test.sh installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    RESULTS.mkdir(exist_ok=True)  # screenshots for a person to look at
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


class ConsoleErrors(list):
    def check(self, allowed: tuple[str, ...] = ()):
        """No console errors, but for those containing one of ``allowed`` (an expected 404, say)."""
        unexpected = [e for e in self if not any(a in e for a in allowed)]
        assert not unexpected, f"console errors: {unexpected}"


def watch_console(page):
    """Collects the page's console errors and uncaught exceptions in ``page.console_errors``."""
    errors = ConsoleErrors()
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"{error}\n{error.stack}"))
    page.console_errors = errors
    return page


@pytest.fixture
def page_at(browser):
    """Opens pages at a chosen screen size (a 1280x720 projector, a 360 px phone with touch), console watched."""
    contexts = []

    def open_page(width, height, touch=False):
        context = browser.new_context(viewport={"width": width, "height": height}, has_touch=touch, is_mobile=touch)
        contexts.append(context)
        return watch_console(context.new_page())

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = watch_console(context.new_page())
    yield page
    # a parametrised test's name holds its parameters ("/", "?"...): keep it one flat file name
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")
    page.screenshot(path=RESULTS / f"{name}.png", full_page=True)
    context.close()


@pytest.fixture
def digits_page(page, server_url):
    return open_digits_page(page, server_url)


@pytest.fixture
def drawn_one(digits_page):
    """The drawing page with a 1 drawn by mouse and guessed."""
    draw(digits_page, ONE)
    wait_for_guess(digits_page, 1)
    return digits_page
