"""/docs works offline under the CSP, every page links to the others and fits a phone and a projector."""

import pytest

from tests.browser.conftest import RESULTS

pytestmark = pytest.mark.browser


def requests_elsewhere(page, server_url) -> list[str]:
    """A list that fills with every request the page makes to anywhere but the app itself."""
    external = []

    def record(request):
        if not request.url.startswith((server_url, "data:", "blob:")):
            external.append(request.url)

    page.on("request", record)
    return external


def test_api_docs_render_from_local_files(page, server_url):
    external = requests_elsewhere(page, server_url)
    page.goto(server_url + "/docs")
    page.wait_for_selector(".opblock")
    assert page.locator(".opblock").count() >= 10
    assert external == []
    page.console_errors.check()


@pytest.mark.parametrize("path", ["/", "/playground", "/arithmetic", "/train", "/data", "/class"])
def test_pages_load_no_third_party_assets_and_link_to_each_other(page, server_url, path):
    external = requests_elsewhere(page, server_url)
    page.goto(server_url + path)
    page.wait_for_load_state("networkidle")
    hrefs = page.evaluate("() => [...document.querySelectorAll('header nav a')].map(a => a.getAttribute('href'))")
    assert hrefs == ["/", "/playground", "/arithmetic", "/train", "/data", "/class", "/docs"]
    assert external == []
    page.console_errors.check()


def tab_through(page, presses):
    """The test ids (or ids) of what the Tab key reaches in ``presses`` presses."""
    focused = set()
    for _ in range(presses):
        page.keyboard.press("Tab")
        focused.add(page.evaluate("() => document.activeElement.dataset.testid || document.activeElement.id || ''"))
    return focused


def test_keyboard_reaches_every_control_on_the_drawing_page(digits_page):
    assert {"clear", "undo", "sample-digit"} <= tab_through(digits_page, 40)


@pytest.mark.parametrize("width, height, device", [(360, 740, "phone"), (1280, 720, "projector")])
@pytest.mark.parametrize(
    "path",
    ["/", "/playground", "/arithmetic?mode=conv&input_size=32&kernel_size=11&padding=8", "/train", "/?model=fashion"],
)
def test_every_page_fits_a_phone_and_a_projector(page_at, server_url, path, width, height, device):
    page = page_at(width, height, touch=device == "phone")
    page.goto(server_url + path)
    page.wait_for_load_state("networkidle")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width  # nothing runs off the side
    name = path.strip("/").split("?")[0] or "digits"
    page.screenshot(path=RESULTS / f"{device}-{name}{'-fashion' if 'fashion' in path else ''}.png", full_page=True)
    page.console_errors.check()


def test_keyboard_reaches_the_training_controls(page, server_url):
    page.goto(server_url + "/train?preset=tiny")
    page.wait_for_selector("[data-testid=shape-row]")
    assert {"layer-type", "add-layer", "dataset", "epochs", "train-button"} <= tab_through(page, 80)


@pytest.mark.parametrize("path", ["/", "/playground", "/arithmetic", "/train", "/data", "/class"])
def test_on_a_projector_each_introduction_folds_to_a_line_and_opens_whole_by_keyboard_and_touch(
    page_at, server_url, path
):
    page = page_at(1366, 768)
    page.goto(server_url + path)
    intro = page.locator(".intro p")
    assert intro.is_visible()
    line = page.evaluate("() => parseFloat(getComputedStyle(document.querySelector('.intro p')).lineHeight)")
    assert intro.bounding_box()["height"] <= line * 1.5  # one line, not the whole paragraph
    more = page.get_by_test_id("intro-more")
    more.focus()
    page.keyboard.press("Enter")
    assert more.get_attribute("aria-expanded") == "true" and more.inner_text() == "Less"
    assert intro.bounding_box()["height"] > line * 1.5  # the whole paragraph
    assert intro.evaluate("p => p.scrollWidth <= p.clientWidth")  # nothing cut off to the side
    page.keyboard.press("Enter")
    assert intro.bounding_box()["height"] <= line * 1.5
    touch = page_at(1280, 720, touch=True)
    touch.goto(server_url + path)
    touch.get_by_test_id("intro-more").tap()
    assert touch.get_by_test_id("intro-more").get_attribute("aria-expanded") == "true"
    phone = page_at(390, 844, touch=True)
    phone.goto(server_url + path)
    assert phone.get_by_test_id("intro-more").is_hidden()  # a phone shows it whole
    assert phone.locator(".intro p").evaluate("p => p.scrollWidth <= p.clientWidth")
    for opened in (page, touch, phone):
        opened.console_errors.check()
