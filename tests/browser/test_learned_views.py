"""What did it learn, in real Chromium: a unit's card, the class map's moving dot, network surgery."""

import time

import pytest
from playwright.sync_api import Error as PlaywrightError

from tests.browser.drawing import ONE, ZERO, count_pixels, draw, open_digits_page, wait_for_guess

pytestmark = pytest.mark.browser


def test_a_unit_card_opens_from_a_map_by_click_or_keyboard(drawn_one):
    page = drawn_one
    conv2 = page.locator("[data-testid=layer][data-layer=conv2] [data-testid=activation-map]").nth(3)
    conv2.focus()
    before = conv2.bounding_box()
    page.keyboard.press("Enter")
    card = page.get_by_test_id("unit-card")
    card.get_by_test_id("unit-top").first.wait_for()
    # the card opens right below conv2's maps, without pushing the map that opened it away
    assert conv2.bounding_box()["y"] == before["y"]
    layer = page.locator("[data-testid=layer][data-layer=conv2]").bounding_box()
    assert 0 <= card.bounding_box()["y"] - (layer["y"] + layer["height"]) < 40
    assert card.get_by_test_id("unit-top").count() == 9
    assert card.get_by_test_id("unit-synthetic").is_visible()
    assert card.get_by_test_id("unit-weights").locator("canvas").count() == 6  # 5x5 over conv2's 6 input channels
    # one name for one thing: the map is "channel 3" here as in the explanation, and the value is the map's largest
    assert card.locator("h3").text_content() == "conv2: channel 3"
    assert (
        "Its strongest cell for your input:" in card.text_content()
        and "not the cell you point at" in card.text_content()
    )
    page.locator("[data-testid=layer][data-layer=fc3] [data-testid=activation-map]").click(position={"x": 5, "y": 10})
    page.wait_for_selector("[data-testid=unit-card] h3:has-text('the class “0”')")
    page.console_errors.check()


def test_the_class_map_dot_moves_as_the_drawing_changes(drawn_one):
    page = drawn_one
    page.wait_for_function("() => document.querySelector('[data-testid=class-map]').dataset.input")
    first = page.get_by_test_id("class-map").get_attribute("data-input")
    assert page.get_by_test_id("neighbour").count() == 6
    page.get_by_test_id("clear").click()
    draw(page, ZERO)
    wait_for_guess(page, 0)
    page.wait_for_function(
        "(before) => { const now = document.querySelector('[data-testid=class-map]').dataset.input;"
        " return now && now !== before; }",
        arg=first,
    )
    page.wait_for_function("() => document.querySelector('[data-testid=neighbours]').textContent.includes('0 ·')")
    page.console_errors.check()


def test_a_late_answer_for_an_older_drawing_never_replaces_the_newer_ones_neighbours(page, server_url):
    """The first drawing's neighbours are held back until the second drawing's are shown: the page drops them."""
    held = []

    def hold_the_first(route):
        if held:
            route.continue_()
        else:
            held.append(route)  # answered below, after the newer drawing's

    page.route("**/neighbours", hold_the_first)
    open_digits_page(page, server_url)
    draw(page, ONE)
    wait_for_guess(page, 1)
    deadline = time.monotonic() + 20
    while not held:
        assert time.monotonic() < deadline, "no neighbours request was made"
        page.wait_for_timeout(50)  # lets the page's own event loop run: the request is made there
    page.get_by_test_id("clear").click()
    draw(page, ZERO)
    wait_for_guess(page, 0)
    page.wait_for_function("() => document.querySelector('[data-testid=neighbours]').textContent.includes('0 ·')")
    shown = page.get_by_test_id("neighbours").text_content()
    try:
        held[0].fulfill(response=held[0].fetch())  # the old drawing's answer, late
    except PlaywrightError:
        pass  # the page had already aborted that request: dropped all the same
    page.evaluate("() => new Promise((done) => setTimeout(done, 50))")  # the page has had its turn with it
    assert page.get_by_test_id("neighbours").text_content() == shown
    page.console_errors.check()


def test_switching_off_a_filter_compares_the_edited_network(drawn_one):
    page = drawn_one
    page.locator("[data-testid=layer][data-layer=conv1] [data-testid=activation-map]").nth(0).click()
    page.get_by_test_id("switch-off").click()
    result = page.get_by_test_id("surgery-result")
    result.locator("a").wait_for(timeout=20_000)
    text = result.text_content()
    assert "Test accuracy 98.9% →" in text and "before" in text and "after" in text
    page.console_errors.check()


def test_a_keyboard_cell_cursor_moves_over_a_map_and_the_explanation_follows(drawn_one):
    page = drawn_one
    tile = page.locator("[data-testid=layer][data-layer=conv1] [data-testid=activation-map]").nth(1)
    tile.focus()
    for key in ("Home", "ArrowRight", "ArrowRight", "ArrowDown"):
        page.keyboard.press(key)
    detail = page.get_by_test_id("unit-detail")
    assert "conv1, channel 1, cell (1, 2)" in detail.text_content()
    assert detail.get_attribute("aria-live") == "polite"
    page.keyboard.press("Enter")  # Enter pins the cell and opens the unit's card, as a click does
    page.get_by_test_id("unit-card").get_by_test_id("unit-top").first.wait_for()
    assert "pinned" in detail.get_attribute("class")
    page.locator("[data-testid=layer][data-layer=conv1] [data-testid=activation-map]").nth(4).hover()
    assert "conv1, channel 1, cell (1, 2)" in detail.text_content()  # the pointer does not move a pin
    tile.focus()
    page.keyboard.press("ArrowRight")  # the keyboard does: the pin moves with the cursor
    assert "conv1, channel 1, cell (1, 3)" in detail.text_content() and "pinned" in detail.get_attribute("class")
    page.keyboard.press("Escape")
    assert "pinned" not in detail.get_attribute("class")
    page.console_errors.check()


def test_clear_leaves_nothing_of_the_old_drawing(drawn_one):
    """The class map's ring, the nearest pictures, the frame editor and the attack all go with the drawing."""
    page = drawn_one
    page.wait_for_function("() => document.querySelector('[data-testid=class-map]').dataset.input")
    assert page.get_by_test_id("neighbour").count() == 6
    ink = "r + g + b > 0"
    assert count_pixels(page, "[data-testid=frame-editor]", ink) > 0
    page.get_by_test_id("clear").click()
    page.wait_for_function("() => document.querySelector('[data-testid=class-map]').dataset.input === ''")
    assert page.get_by_test_id("neighbour").count() == 0
    assert count_pixels(page, "[data-testid=frame-editor]", ink) == 0
    page.console_errors.check()


def test_the_edited_network_opens_on_the_same_drawing(drawn_one):
    page = drawn_one
    page.locator("[data-testid=layer][data-layer=conv1] [data-testid=activation-map]").nth(0).click()
    page.get_by_test_id("switch-off").click()
    link = page.get_by_test_id("surgery-result").locator("a")
    link.wait_for(timeout=20_000)
    link.click()
    page.wait_for_url(lambda url: "model=e" in url)
    page.wait_for_function("() => document.querySelector('[data-testid=prediction]').textContent.trim() !== ''")
    assert count_pixels(page, "#downsampled", "r + g + b > 0") > 0  # the network sees the carried drawing
    page.console_errors.check()
