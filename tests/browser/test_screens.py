"""Every page at the two screens a class uses, a 1280x720 projector and a 390x844 phone: nothing runs off
the side, and a screenshot of each is kept in test-results/ to look at."""

from __future__ import annotations

import pytest

from tests.browser.conftest import RESULTS

pytestmark = pytest.mark.browser

PAGES = {
    "drawing": ("/", "[data-testid=layer]"),
    "playground": ("/playground?preset=edge_detection&stride=2", "[data-testid=output-caption]:has-text('Output')"),
    "arithmetic": ("/arithmetic", "[data-testid=output-cell]"),
    "volume": (
        "/arithmetic?mode=volume&input_size=32&kernel_size=5&channels=3&filters=1",
        "[data-testid=channel-slice]",
    ),
    "train": ("/train", "[data-testid=layer-row]"),
    "data": ("/data", "[data-testid=dataset-name]"),
    "class": ("/class", "[data-testid=join-code]"),
}


@pytest.mark.parametrize("size", [(1280, 720), (390, 844)], ids=["projector", "phone"])
@pytest.mark.parametrize("name", list(PAGES))
def test_each_page_fits_the_screen(page_at, server_url, name, size):
    width, height = size
    page = page_at(width, height, touch=width < 500)
    path, ready = PAGES[name]
    page.goto(server_url + path)
    page.wait_for_selector(ready)
    page.wait_for_load_state("networkidle")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width
    page.screenshot(path=RESULTS / f"screen-{name}-{width}x{height}.png")
    page.console_errors.check()
