"""The drawing page in real Chromium: draw with the mouse, read the guess, inspect the layers."""

import pytest

from tests.browser.conftest import RESULTS
from tests.browser.drawing import ONE, ZERO, count_pixels, draw, load_sample, open_digits_page, wait_for_guess

pytestmark = pytest.mark.browser

LAYER_TITLES = [
    "conv1 · 6 × 28 × 28",
    "pool1 · 6 × 14 × 14",
    "conv2 · 16 × 10 × 10",
    "pool2 · 16 × 5 × 5",
    "fc1 · 120",
    "fc2 · 100",
    "output · 10",
]


def test_drawing_a_one_and_a_zero_with_the_mouse(drawn_one):
    page = drawn_one
    assert page.get_by_test_id("second-guess").text_content().strip() != ""
    page.get_by_test_id("clear").click()
    draw(page, ZERO)
    wait_for_guess(page, 0)
    page.console_errors.check()


def test_every_layer_shows_its_activation_maps(drawn_one):
    page = drawn_one
    layers = page.get_by_test_id("layer")
    assert layers.count() == 7
    titles = [layers.nth(i).locator("h3").text_content() for i in range(7)]
    assert titles == LAYER_TITLES
    counts = [layers.nth(i).get_by_test_id("activation-map").count() for i in range(7)]
    assert counts == [6, 6, 16, 16, 1, 1, 1]
    assert page.get_by_test_id("probability-bar").count() == 10
    # the 32x32 input is drawn, and it is not blank
    size = page.evaluate(
        "() => [document.querySelector('[data-testid=downsampled]').width,"
        " document.querySelector('[data-testid=downsampled]').height]"
    )
    assert size == [32, 32]
    assert count_pixels(page, "[data-testid=downsampled]", "r > 0") > 0
    page.console_errors.check()


def test_clear_empties_the_guess_and_shows_the_prompt(drawn_one):
    page = drawn_one
    page.get_by_test_id("clear").click()
    assert page.get_by_test_id("prediction").text_content().strip() == ""
    assert page.get_by_test_id("second-guess").text_content().strip() == ""
    assert page.get_by_test_id("prompt").is_visible()
    page.console_errors.check()


def test_a_dot_is_refused_as_too_small_and_the_guess_is_announced_only_when_it_rests(digits_page):
    page = digits_page
    assert page.locator(".guess-panel").get_attribute("aria-live") is None  # not every 90 ms while drawing
    draw(page, [[(0.5, 0.5), (0.51, 0.5)]])
    prompt = page.get_by_test_id("prompt")
    page.wait_for_function("() => document.querySelector('[data-testid=prompt]').textContent.includes('Too small')")
    assert prompt.is_visible() and page.get_by_test_id("prediction").text_content().strip() == ""
    assert count_pixels(page, "[data-testid=downsampled]", "r > 0") > 100  # the blown-up disc is shown
    page.get_by_test_id("clear").click()
    draw(page, ONE)
    wait_for_guess(page, 1)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=guess-announcer]').textContent.startsWith('First guess 1')"
    )
    assert "must answer with one of its classes" in page.get_by_test_id("guess-note").text_content()
    page.console_errors.check()


def test_the_output_strip_is_coloured_by_probability_and_a_tied_pool_window_has_one_winner(drawn_one):
    page = drawn_one
    output = page.locator("[data-layer=fc3] [data-testid=activation-map]")
    brightness = output.evaluate(
        """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, 1).data;
                  return Array.from({ length: c.width }, (_, k) => d[4 * k] + d[4 * k + 1] + d[4 * k + 2]); }"""
    )
    assert brightness.index(max(brightness)) == 1  # the likely class is the brightest, not the largest |logit|
    assert "probability" in page.locator("[data-layer=fc3] .legend").text_content()
    output.hover(position={"x": output.bounding_box()["width"] * 0.15, "y": 3})
    assert "logit" in page.get_by_test_id("unit-detail").text_content()
    # pool1's top-left window sees only the empty corner: four zeros, one winner
    pool = page.locator("[data-layer=pool1] [data-testid=activation-map]").first
    pool.hover(position={"x": 1, "y": 1})
    page.get_by_test_id("unit-detail").locator(".number-grid").wait_for()
    assert page.get_by_test_id("unit-detail").locator("td.winner").count() == 1
    assert page.get_by_test_id("unit-detail").locator("td").first.get_attribute("class") == "winner"


def test_hovering_a_unit_shows_its_receptive_field_and_weights(drawn_one):
    page = drawn_one
    tile = page.get_by_test_id("layer").nth(0).get_by_test_id("activation-map").nth(2)
    tile.hover(position={"x": 42, "y": 25})  # scrolls it into view, then moves the mouse there
    detail = page.get_by_test_id("unit-detail")
    detail.locator(".dot-product").wait_for()
    assert "conv1, channel 2" in detail.text_content()
    row = detail.get_by_test_id("channel-row")
    assert row.count() == 1  # conv1 reads one input channel
    assert row.locator("table.number-grid").nth(0).locator("td").count() == 25  # the 5x5 patch of the input
    assert row.locator("table.number-grid").nth(1).locator("td").count() == 25  # the 5x5 weights
    # the receptive field is drawn over the input: cyan-tinted pixels appear
    tinted = count_pixels(page, "[data-testid=downsampled]", "b > r + 30")
    assert tinted == 25
    page.console_errors.check()


def test_a_sample_digit_loads_with_one_click(digits_page):
    page = digits_page
    load_sample(page, 7)
    page.console_errors.check()


def test_undo_removes_the_last_stroke(drawn_one):
    page = drawn_one
    page.get_by_test_id("undo").click()
    page.wait_for_function("() => document.querySelector('[data-testid=prediction]').textContent.trim() === ''")


def test_layer_visibility_hides_a_layer(digits_page):
    page = digits_page
    page.locator("#layer-toggles input[data-layer=conv2]").uncheck()
    assert page.locator("[data-testid=layer][data-layer=conv2]").is_hidden()


def test_api_failure_is_said_in_words_and_the_drawing_stays(digits_page):
    page = digits_page
    page.route(
        "**/api/predict**",
        lambda route: route.fulfill(status=503, body='{"detail": "overloaded"}', content_type="application/json"),
    )
    draw(page, ONE)
    error = page.get_by_test_id("error")
    error.wait_for(state="visible")
    assert "overloaded" in error.text_content()
    drawn = count_pixels(page, "[data-testid=draw-canvas]", "r < 100")
    assert drawn > 100


def test_the_page_works_on_a_phone(page_at, server_url):
    page = page_at(360, 740, touch=True)
    page.goto(server_url + "/")
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 360
    load_sample(page, 3, touch=True)
    page.screenshot(path=RESULTS / "digits-phone.png", full_page=True)
    page.console_errors.check()


def in_viewport(page, testid):
    box = page.get_by_test_id(testid).bounding_box()
    viewport = page.viewport_size
    return box["y"] >= 0 and box["y"] < viewport["height"] and box["x"] + box["width"] <= viewport["width"] + 1


def test_a_tapped_cell_stays_pinned_on_a_phone_with_its_explanation_in_view(page_at, server_url):
    page = page_at(360, 740, touch=True)
    page.goto(server_url + "/")
    load_sample(page, 3, touch=True)
    pool2 = page.locator("[data-testid=layer][data-layer=pool2] [data-testid=activation-map]").nth(2)
    pool2.scroll_into_view_if_needed()
    # with nothing selected the sheet is a single line in the words of touch, hiding little of the maps
    assert page.get_by_test_id("unit-detail").bounding_box()["height"] < 70
    assert page.get_by_test_id("unit-detail").inner_text().strip() == "Tap a cell of any map"
    pool2.tap(position={"x": 20, "y": 20})  # a touch: pointer down, then up
    detail = page.get_by_test_id("unit-detail")
    page.wait_for_function("() => document.querySelector('[data-testid=unit-detail]').classList.contains('pinned')")
    assert "pool2, channel 2" in detail.text_content()  # still there after the finger lifted
    assert in_viewport(page, "unit-detail") and in_viewport(page, "detail-input")  # a sheet next to the map
    page.screenshot(path=RESULTS / "digits-phone-pinned.png")
    pool2.tap(position={"x": 20, "y": 20})  # the same cell again lets go
    page.wait_for_function("() => !document.querySelector('[data-testid=unit-detail]').classList.contains('pinned')")
    page.console_errors.check()


def test_a_clicked_cell_stays_pinned_while_the_mouse_moves_on_and_escape_releases_it(drawn_one):
    page = drawn_one
    conv1 = page.locator("[data-testid=layer][data-layer=conv1] [data-testid=activation-map]")
    conv1.nth(0).click(position={"x": 42, "y": 30})
    detail = page.get_by_test_id("unit-detail")
    pinned = detail.locator("h3").first.text_content()
    assert pinned.startswith("conv1, channel 0")
    conv1.nth(3).hover(position={"x": 10, "y": 10})
    assert detail.locator("h3").first.text_content() == pinned  # the pin holds against hovering
    # the input beside the explanation shows the unit's patch (outlined in cyan)
    assert count_pixels(page, "[data-testid=detail-input]", "b > r + 40") > 0
    page.keyboard.press("Escape")
    page.wait_for_function("() => !document.querySelector('[data-testid=unit-detail]').classList.contains('pinned')")
    conv1.nth(3).hover(position={"x": 12, "y": 12})
    assert detail.locator("h3").first.text_content().startswith("conv1, channel 3")
    page.console_errors.check()


def test_conv2s_sum_is_one_row_per_input_channel_readable_on_a_projector(page_at, server_url):
    page = page_at(1280, 720)
    page.goto(server_url + "/")
    load_sample(page, 3)
    conv2 = page.locator("[data-testid=layer][data-layer=conv2] [data-testid=activation-map]").nth(5)
    conv2.click(position={"x": 30, "y": 30})
    rows = page.get_by_test_id("unit-detail").get_by_test_id("channel-row")
    rows.first.wait_for()
    assert rows.count() == 6  # conv2 looks through all six pool1 channels
    first = rows.first
    assert first.locator("table").count() == 2 and first.locator("table").nth(1).locator("td").count() == 25
    assert "pool1 channel 0" in first.text_content()
    sums = [float(row.locator(".channel-sum").text_content().strip("= ")) for row in rows.all()]
    total = page.get_by_test_id("unit-detail").locator(".dot-product").text_content()
    assert " + ".join(f"{v:.2f}" for v in sums) in total
    font = first.locator("td").first.evaluate("td => parseFloat(getComputedStyle(td).fontSize)")
    assert font >= 11  # legible on a projector
    panel = page.get_by_test_id("unit-detail").bounding_box()
    for row in rows.all():
        for part in row.locator("figure").all():
            box = part.bounding_box()
            assert box["x"] + box["width"] <= panel["x"] + panel["width"]  # nothing cut off by the panel
    page.screenshot(path=RESULTS / "digits-conv2-detail-1280.png")
    page.console_errors.check()


def test_the_guess_updates_while_the_stroke_is_still_being_drawn(digits_page):
    page = digits_page
    box = page.get_by_test_id("draw-canvas").bounding_box()
    page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.15 * box["height"])
    page.mouse.down()
    for k in range(1, 11):
        page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + (0.15 + 0.07 * k) * box["height"])
        page.wait_for_timeout(60)
    # the button is still held: a guess is already shown
    page.wait_for_function("() => document.querySelector('[data-testid=prediction]').textContent.trim() !== ''")
    page.mouse.up()
    wait_for_guess(page, 1)


def test_the_whole_network_is_one_view_with_links_from_the_selected_unit(page_at, server_url):
    page = page_at(1280, 720)
    page.goto(server_url + "/")
    load_sample(page, 3)
    network = page.get_by_test_id("network-view")
    columns = [c.get_attribute("data-layer") for c in network.get_by_test_id("network-column").all()]
    assert columns == ["input", "conv1", "pool1", "conv2", "pool2", "fc1", "fc2", "fc3"]
    # the input on the left, every layer to its right, all inside the view
    boxes = [c.bounding_box() for c in network.get_by_test_id("network-column").all()]
    assert [b["x"] for b in boxes] == sorted(b["x"] for b in boxes)
    # a conv2 unit reads a 5x5 window of each of pool1's six maps: six patches, six links, its field on the input
    conv2 = page.locator("[data-testid=layer][data-layer=conv2] [data-testid=activation-map]")
    conv2.nth(5).click(position={"x": 30, "y": 30})
    assert network.locator("[data-testid=network-patch]").count() == 6
    assert network.locator("[data-testid=network-link]").count() == 6
    assert network.locator("[data-testid=network-field]").count() == 1
    unit = network.locator("[data-testid=network-unit]").bounding_box()
    patch = network.locator("[data-testid=network-patch]").first.bounding_box()
    field = network.locator("[data-testid=network-field]").bounding_box()
    assert field["x"] < patch["x"] < unit["x"]  # input, pool1, conv2 from left to right
    page.get_by_test_id("unit-card").get_by_text("Switch off this filter").wait_for()  # the click's card is in
    network.scroll_into_view_if_needed()
    page.screenshot(path=RESULTS / "digits-network-1280x720.png")
    # legible on a projector: the view's names and class labels and the worked sum in 14 px type or more
    sizes = page.evaluate(
        """() => [...document.querySelectorAll('.network-header, .network-header span, .network-label, .dot-product')]
            .map((e) => [e.className, parseFloat(getComputedStyle(e).fontSize)])"""
    )
    assert sizes and all(size >= 14 for _, size in sizes), sizes
    # and no column's name runs into its neighbour's
    texts = page.evaluate(
        """() => [...document.querySelectorAll('[data-testid=network-column]')].map((h) => {
            const walker = document.createTreeWalker(h, NodeFilter.SHOW_TEXT);
            let left = Infinity, right = -Infinity;
            for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                const r = document.createRange(); r.selectNodeContents(node);
                for (const b of r.getClientRects()) { left = Math.min(left, b.left); right = Math.max(right, b.right); }
            }
            return [left, right]; })"""
    )
    assert all(a[1] <= b[0] + 1 for a, b in zip(texts, texts[1:])), texts
    # pointing in the view itself pins the unit under the pointer, and the explanation follows
    thumb = network.locator("canvas[data-layer=pool1][data-channel='1']")
    thumb.click(position={"x": 2, "y": 2})
    detail = page.get_by_test_id("unit-detail")
    assert detail.locator("h3").first.text_content().startswith("pool1, channel 1, cell (0, 0)")
    assert network.locator("[data-testid=network-patch]").count() == 1  # pooling reads its own channel only
    page.keyboard.press("Escape")
    assert network.locator("[data-testid=network-link]").count() == 0
    # a dense unit reads all of the layer before: its links fan out to that whole column
    strip = network.locator("canvas[data-layer=fc1]")
    strip.hover(position={"x": 4, "y": 10})
    assert network.locator("[data-testid=network-link]").count() == 2
    assert detail.locator("h3").first.text_content().startswith("fc1, unit")
    assert "all of it" in detail.locator(".detail-input figcaption").text_content()
    page.console_errors.check()


def test_the_whole_network_fits_a_phone(page_at, server_url):
    page = page_at(360, 740, touch=True)
    page.goto(server_url + "/")
    load_sample(page, 3, touch=True)
    network = page.get_by_test_id("network-view")
    network.scroll_into_view_if_needed()
    view = network.bounding_box()
    for canvas in network.locator("canvas").all():
        box = canvas.bounding_box()
        assert view["x"] <= box["x"] and box["x"] + box["width"] <= view["x"] + view["width"] + 0.5
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 360
    network.locator("canvas[data-layer=conv1][data-channel='0']").tap(position={"x": 10, "y": 10})
    page.wait_for_function("() => document.querySelector('[data-testid=unit-detail]').classList.contains('pinned')")
    assert network.locator("[data-testid=network-link]").count() == 1
    page.screenshot(path=RESULTS / "digits-network-phone.png")
    page.console_errors.check()


def test_one_tab_stop_a_layer_page_down_walks_its_maps_and_a_skip_link_passes_them(drawn_one):
    page = drawn_one
    maps = page.locator("[data-testid=activation-map]")
    tabbable = maps.evaluate_all(
        "cs => cs.filter((c) => c.tabIndex === 0).map((c) => c.closest('[data-layer]').dataset.layer)"
    )
    assert tabbable == ["conv1", "pool1", "conv2", "pool2", "fc1", "fc2", "fc3"]  # 7 stops, not 47
    conv2 = page.locator("[data-testid=layer][data-layer=conv2] [data-testid=activation-map]")
    conv2.first.focus()
    page.keyboard.press("PageDown")
    page.keyboard.press("PageDown")
    assert conv2.nth(2).evaluate("c => c === document.activeElement")
    page.keyboard.press("PageUp")
    assert conv2.nth(1).evaluate("c => c === document.activeElement")
    skip = page.get_by_test_id("skip-maps")
    skip.focus()
    assert skip.is_visible()
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "explain-heading"
    page.console_errors.check()


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (1024, 576)])
def test_on_a_projector_the_pad_the_guess_and_the_whole_network_share_the_first_screen(
    page_at, server_url, width, height
):
    """1280x720, and 1024x576 (a 1280x720 projector at 125%): nothing to scroll while the class watches."""
    page = page_at(width, height)
    open_digits_page(page, server_url)
    draw(page, ONE)
    wait_for_guess(page, 1)
    for testid in ("draw-canvas", "clear", "prediction", "probability-bars", "network-view"):
        box = page.locator(f"[data-testid={testid}], #{testid}").first.bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= height, f"{testid} ends at {box['y'] + box['height']:.0f}"
    assert page.evaluate("() => scrollY") == 0
    page.screenshot(path=RESULTS / f"digits-projector-{width}x{height}.png")
    page.console_errors.check()


def test_on_a_phone_the_guess_stays_in_sight_while_drawing(page_at, server_url):
    page = page_at(390, 844, touch=True)
    open_digits_page(page, server_url)
    page.get_by_test_id("live-guess").evaluate("e => e.scrollIntoView({ block: 'start' })")  # the pad's top in view
    draw(page, ONE)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=live-guess]').textContent.startsWith('Guess: 1')"
    )
    canvas, guess = page.get_by_test_id("draw-canvas").bounding_box(), page.get_by_test_id("live-guess").bounding_box()
    for box in (canvas, guess):
        assert box["y"] >= 0 and box["y"] + box["height"] <= 845
    assert guess["y"] + guess["height"] <= canvas["y"]  # above the finger, never under it
    page.screenshot(path=RESULTS / "digits-phone-drawing-390x844.png")
    page.console_errors.check()


def test_on_a_phone_a_pinned_cells_weights_fit_the_screen(page_at, server_url):
    page = page_at(360, 740, touch=True)
    open_digits_page(page, server_url)
    load_sample(page, 3)
    cell = page.locator("[data-testid=layer][data-layer=conv2] [data-testid=activation-map]").nth(1)
    cell.scroll_into_view_if_needed()
    cell.tap(position={"x": 20, "y": 20})
    page.locator("#unit-detail .channel-row").first.wait_for()
    widths = page.evaluate(
        "() => { const d = document.querySelector('#unit-detail'); return [d.scrollWidth, d.clientWidth]; }"
    )
    assert widths[0] <= widths[1], f"the weights run {widths[0] - widths[1]} px past the panel"
    page.console_errors.check()
