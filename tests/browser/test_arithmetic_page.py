"""The convolution-arithmetic stepper in real Chromium: the lecture's cases, stepping, URL state."""

import pytest

from tests.browser.conftest import RESULTS

pytestmark = pytest.mark.browser


def open_page(page, server_url, query=""):
    page.goto(f"{server_url}/arithmetic{query}")
    page.wait_for_function("() => document.querySelector('[data-testid=formula]').textContent.includes('=')")
    return page


def settle(page, expected_in_formula):
    page.wait_for_function(
        "t => document.querySelector('[data-testid=formula]').textContent.includes(t)", arg=expected_in_formula
    )


def window_cells(page):
    return page.evaluate(
        "() => [...document.querySelectorAll('#input-grid rect.tap')]"
        ".map(r => [Number(r.dataset.row), Number(r.dataset.col)])"
    )


@pytest.mark.parametrize(
    ("preset", "formula", "size"),
    [
        ("stride-1", "/1 + 1 = 5", "5 × 5"),
        ("stride-2", "/2 + 1 = 3", "3 × 3"),
        ("stride-3", "/3 + 1 = 2.33", "does not fit"),
    ],
)
def test_the_lectures_7x7_cases(page, server_url, preset, formula, size):
    open_page(page, server_url)
    page.locator(f"[data-testid=preset][data-preset={preset}]").click()
    settle(page, formula)
    assert size in page.get_by_test_id("output-size").text_content()
    if preset == "stride-3":
        message = page.get_by_test_id("fit-message").text_content()
        assert "does not fit" in message
        assert page.locator("#input-grid rect.uncovered").count() == 13  # the last row and column of 7x7
    page.console_errors.check()


def test_the_formula_reads_with_the_current_numbers(page, server_url):
    open_page(page, server_url, "?mode=conv&input_size=7&kernel_size=3&stride=2&padding=0&dilation=1")
    assert page.get_by_test_id("formula").text_content() == "(7 + 2·0 − 1·(3−1) − 1)/2 + 1 = 3"


def test_stepping_moves_the_window(page, server_url):
    open_page(page, server_url, "?mode=conv&input_size=7&kernel_size=3&stride=2&padding=0&dilation=1&step=0")
    first = window_cells(page)
    assert first[0] == [0, 0] and len(first) == 9
    page.get_by_test_id("step-next").click()
    assert window_cells(page)[0] == [0, 2]
    assert "step=1" in page.url
    page.keyboard.press("ArrowRight")
    assert window_cells(page)[0] == [0, 4]
    page.get_by_test_id("step-prev").click()
    assert window_cells(page)[0] == [0, 2]
    page.locator("[data-testid=output-cell][data-row='2'][data-col='1']").click()
    assert window_cells(page)[0] == [4, 2]
    assert "Step 8 of 9" in page.get_by_test_id("step-counter").text_content()
    page.console_errors.check()


def test_the_lecture_5x5_example_gives_4_at_the_first_cell(page, server_url):
    open_page(page, server_url)
    page.locator("[data-testid=preset][data-preset=lecture-5x5]").click()
    settle(page, "= 3")
    detail = page.get_by_test_id("step-detail").text_content()
    assert detail.endswith("= 4")
    assert "1*1 + 1*0 + 1*1" in detail
    page.locator("[data-testid=output-cell][data-row='2'][data-col='2']").click()
    values = page.evaluate("() => [...document.querySelectorAll('#output-grid text')].map(t => t.textContent)")
    assert values == ["4", "3", "4", "2", "4", "3", "2", "3", "4"]


def test_dilation_2_on_7x7_with_3x3_gives_3x3_with_gaps(page, server_url):
    open_page(page, server_url)
    page.locator("[data-testid=preset][data-preset=dilation-2]").click()
    settle(page, "2·(3−1)")
    assert page.get_by_test_id("output-size").text_content() == "3 × 3"
    taps = window_cells(page)
    assert taps[:3] == [[0, 0], [0, 2], [0, 4]]  # the dilated taps skip a cell


def test_pooling_preset_gives_the_lecture_output(page, server_url):
    open_page(page, server_url)
    page.locator("[data-testid=preset][data-preset=pool-4x4]").click()
    page.wait_for_function("() => document.querySelector('[data-testid=step-detail]').textContent.includes('max(')")
    assert page.get_by_test_id("step-detail").text_content() == "output (0, 0) = max(1, 1, 5, 6) = 6"
    winners = page.evaluate(
        "() => [...document.querySelectorAll('#input-grid rect.winner')].map(r => [r.dataset.row, r.dataset.col])"
    )
    assert winners == [["1", "1"]]  # the 6, and only it
    page.locator("[data-testid=output-cell][data-row='1'][data-col='1']").click()
    values = page.evaluate("() => [...document.querySelectorAll('#output-grid text')].map(t => t.textContent)")
    assert values == ["6", "8", "3", "4"]


def test_a_large_input_keeps_one_scale_and_says_the_numbers_are_hidden(page, server_url):
    open_page(page, server_url, "?mode=conv&input_size=32&kernel_size=3&stride=1&padding=1&dilation=1&step=0")
    assert page.get_by_test_id("numbers-hidden").is_visible()
    widths = page.evaluate(
        "() => ['#input-grid', '#output-grid'].map(g => document.querySelector(g + ' rect.cell').getAttribute('width'))"
    )
    assert widths[0] == widths[1]  # the 32x32 output is not drawn larger than the 34x34 padded input
    open_page(page, server_url, "?mode=conv&input_size=7&kernel_size=3&stride=1&padding=0&dilation=1&step=0")
    assert page.get_by_test_id("numbers-hidden").is_hidden()


def test_transposed_mode_scatters(page, server_url):
    open_page(page, server_url, "?mode=transposed&input_size=2&kernel_size=3&stride=2&padding=0&dilation=1&step=0")
    assert page.get_by_test_id("output-size").text_content() == "5 × 5"
    assert page.locator("#output-grid rect.scatter").count() == 9


def test_transposed_as_a_direct_convolution_over_zero_inserted_input(page, server_url):
    # N=2, F=3, S=2, P=0: one zero between the cells, D(F-1)-P = 2 around: (2-1)*2 + 1 + 2*2 = 7
    open_page(page, server_url, "?mode=transposed&input_size=2&kernel_size=3&stride=2&padding=0&dilation=1&step=0")
    scatter_output = page.evaluate("() => document.querySelectorAll('#output-grid rect').length")
    page.get_by_test_id("direct-view").check()
    page.wait_for_function("() => location.search.includes('view=direct')")
    assert page.locator("#input-grid rect.cell").count() == 49
    assert page.locator("#input-grid rect.inserted").count() == 5  # the 3x3 core minus the 4 input cells
    # a ring of 2 zeros around the 3x3 core: 40 cells, of which the first window covers 8 (and input (0, 0))
    assert page.locator("#input-grid rect.pad").count() == 40 - 8
    assert page.locator("#input-grid rect.tap").count() == 9
    assert page.locator("#output-grid rect").count() == scatter_output == 25
    assert "Step 1 of 25" in page.get_by_test_id("step-counter").text_content()
    # every output cell the direct view computes is the server's scatter result
    for cell in range(25):
        page.locator("[data-testid=output-cell]").nth(cell).click()
        detail = page.get_by_test_id("step-detail").text_content()
        text = page.locator("#output-grid text").nth(cell).text_content()
        assert detail.endswith(" (flipped kernel)")
        assert float(detail.split(" = ")[-1].split(" ")[0]) == pytest.approx(float(text), abs=0.01)
    assert page.locator(".grid-legend .swatch.inserted").is_visible()
    page.console_errors.check()


def test_the_keyboard_walks_the_output_grid_in_two_dimensions(page, server_url):
    open_page(page, server_url, "?mode=conv&input_size=7&kernel_size=3&stride=1&padding=0&dilation=1&step=0")
    page.locator("#output-grid").focus()
    for key in ("Home", "ArrowDown", "ArrowDown", "ArrowRight"):
        page.keyboard.press(key)
    assert "Step 12 of 25" in page.get_by_test_id("step-counter").text_content()  # row 2, column 1
    assert page.get_by_test_id("step-detail").text_content().startswith("output (2, 1)")
    assert page.get_by_test_id("step-detail").get_attribute("aria-live") == "polite"


def test_the_kernel_has_its_own_grid_and_a_line_links_the_window_to_its_output(page, server_url):
    open_page(page, server_url, "?mode=conv&input_size=7&kernel_size=3&stride=2&padding=0&dilation=1&step=4")
    kernel = page.get_by_test_id("kernel-grid")
    assert kernel.locator("rect").count() == 9 and kernel.locator("text").count() == 9
    link = page.locator("#link-overlay polyline")
    link.wait_for(state="attached")
    window = page.locator("#input-grid .window-span").bounding_box()
    cell = page.locator("#output-grid rect.current").bounding_box()
    overlay = page.locator("#link-overlay").bounding_box()
    points = link.evaluate("l => [...l.points].map((p) => [p.x, p.y])")
    (x1, y1), *_, (x2, y2) = points
    assert x1 + overlay["x"] == pytest.approx(window["x"] + window["width"] / 2, abs=1)  # above the window
    assert x2 + overlay["x"] == pytest.approx(cell["x"] + cell["width"] / 2, abs=1)  # above the output cell
    grid_tops = [page.locator(f"#{g}").bounding_box()["y"] for g in ("input-grid", "output-grid")]
    # the bracket runs above both grids: it crosses no cell, so no number
    assert max(y for _, y in points) + overlay["y"] <= max(grid_tops) + 1
    # each weight in its cell's top band, the cell's number below it: no mark overlaps a number
    overlaps = page.evaluate(
        """() => {
            const boxes = (sel) => [...document.querySelectorAll(sel)].map((t) => t.getBoundingClientRect());
            const marks = boxes('#input-grid text.tap-weight'), numbers = boxes('#input-grid text[data-cell]');
            const hit = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom - 1 && b.top < a.bottom - 1;
            const crossed = marks.filter((m) => numbers.some((n) => hit(m, n))).length;
            return [marks.length, Math.min(...marks.map((m) => m.height)), crossed];
        }"""
    )
    assert overlaps[0] == 9 and overlaps[1] >= 9 and overlaps[2] == 0
    page.locator("[data-testid=preset][data-preset=pool-4x4]").click()
    page.wait_for_function("() => document.getElementById('kernel-figure').hidden")
    page.console_errors.check()


def test_the_stepper_fits_a_projector_screen(page_at, server_url):
    query = "?mode=conv&input_size=7&kernel_size=3&stride=1&padding=0&dilation=1"
    page = open_page(page_at(1280, 720), server_url, query)
    for part in ("input-grid", "output-grid", "step-detail"):
        box = page.get_by_test_id(part).bounding_box()
        assert box["y"] + box["height"] <= 720, part  # the grids and the worked sum without scrolling
    page.screenshot(path=RESULTS / "arithmetic-1280x720.png")
    page.console_errors.check()


@pytest.mark.parametrize(
    "name, query",
    [
        ("conv", "?mode=conv&input_size=5&kernel_size=3&stride=1&padding=1&dilation=1"),
        ("large", "?mode=conv&input_size=16&kernel_size=3&stride=1&padding=1&dilation=1"),
        ("transposed", "?mode=transposed&input_size=3&kernel_size=3&stride=2&padding=0&dilation=1"),
        ("direct", "?mode=transposed&input_size=3&kernel_size=3&stride=2&padding=0&dilation=1&view=direct"),
    ],
)
def test_on_a_phone_input_and_output_sit_side_by_side_with_touch_wording(page_at, server_url, name, query):
    page = open_page(page_at(360, 740, touch=True), server_url, query)
    grids = page.get_by_test_id("input-grid"), page.get_by_test_id("output-grid")
    grids[1].scroll_into_view_if_needed()
    entry, result = (g.bounding_box() for g in grids)
    assert abs(entry["y"] - result["y"]) < 1  # one row: both seen while stepping
    assert entry["x"] + entry["width"] < result["x"] and result["x"] + result["width"] <= 360
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 360
    assert page.locator(".pointer-coarse").first.is_visible() and page.locator(".pointer-fine").first.is_hidden()
    page.screenshot(path=RESULTS / f"arithmetic-phone-{name}.png")
    page.console_errors.check()


def test_parameter_calculator(page, server_url):
    open_page(page, server_url, "?mode=conv&input_size=32&kernel_size=5&stride=1&padding=2&dilation=1")
    page.get_by_test_id("in-channels").fill("3")
    page.get_by_test_id("filters").fill("10")
    page.get_by_test_id("filters").dispatch_event("change")
    page.wait_for_function("() => document.querySelector('[data-testid=parameters]').textContent.includes('760')")
    assert "10 × 32 × 32" in page.get_by_test_id("parameters").text_content()


def test_the_url_restores_the_state(page, server_url):
    open_page(page, server_url, "?mode=conv&input_size=9&kernel_size=5&stride=2&padding=1&dilation=1&step=4")
    assert page.get_by_test_id("input-size").input_value() == "9"
    assert page.get_by_test_id("kernel-size").input_value() == "5"
    assert "Step 5 of 16" in page.get_by_test_id("step-counter").text_content()
    page.get_by_test_id("stride").fill("1")
    page.get_by_test_id("stride").dispatch_event("change")
    page.wait_for_function("() => location.search.includes('stride=1')")
    page.reload()
    page.wait_for_function("() => document.querySelector('[data-testid=formula]').textContent.includes('/1 + 1')")
    assert page.get_by_test_id("stride").input_value() == "1"
    page.console_errors.check()


def test_space_plays_and_pauses(page, server_url):
    open_page(page, server_url, "?mode=conv&input_size=7&kernel_size=3&stride=1&padding=0&dilation=1&step=0")
    page.get_by_test_id("speed").fill("10")
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press(" ")
    page.wait_for_function("() => !location.search.includes('step=0')")
    page.keyboard.press(" ")
    assert "Play" in page.get_by_test_id("play").text_content()


def test_fields_of_other_modes_stay_hidden(page, server_url):
    """In plain convolution with Square ticked, the volume's channels, the five width fields and the
    transposed-only checkbox are not shown (the hidden attribute wins over .field's display)."""
    open_page(page, server_url)
    for selector in (".volume-only", ".rect-only", ".transposed-only"):
        shown = page.evaluate(
            "s => [...document.querySelectorAll(s)].filter((e) => e.getClientRects().length > 0).length", selector
        )
        assert shown == 0, selector
    page.get_by_test_id("square").uncheck()
    assert page.locator(".rect-only").first.is_visible()


def test_a_value_out_of_bounds_is_corrected_in_words(page, server_url):
    open_page(page, server_url)
    page.get_by_test_id("stride").fill("0")
    page.get_by_test_id("stride").press("Enter")
    error = page.get_by_test_id("error")
    error.wait_for()
    assert error.text_content() == "Stride S is 1 to 8 here: 0 became 1."
    assert page.get_by_test_id("stride").input_value() == "1"
    page.get_by_test_id("input-size").fill("200")
    page.get_by_test_id("input-size").press("Enter")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=error]').textContent.startsWith('Input size N is 1 to 32')"
    )
    assert page.get_by_test_id("input-size").input_value() == "32"
    settle(page, "+ 1 = 30")


def test_a_rectangular_layer_says_each_axiss_size_and_words_each_axis(page, server_url):
    page.goto(f"{server_url}/arithmetic?input_size=5,7&kernel_size=3,2&stride=1,2")
    size = page.get_by_test_id("output-size")
    page.wait_for_function("() => document.querySelector('[data-testid=output-size]').textContent.includes('×')")
    assert size.inner_text() == "3 × 3.50: does not fit (frameworks round down to 3 × 3)"
    message = page.get_by_test_id("fit-message").inner_text()
    assert "the filter's width 2 with stride 2 does not fit an input width of 7" in message
    assert "2x2" not in message and "7x7" not in message
    page.console_errors.check()


def test_the_lecture_cases_and_the_stage_share_one_projector_screen(page_at, server_url):
    page = page_at(1280, 720)
    page.goto(f"{server_url}/arithmetic")
    page.get_by_test_id("output-cell").first.wait_for()
    cases = page.locator("[data-testid=lecture-cases] button")
    assert cases.count() == 11
    for k in range(cases.count()):
        assert cases.nth(k).bounding_box()["y"] + cases.nth(k).bounding_box()["height"] <= 720
    cases.nth(2).click()  # 7x7, stride 2
    page.wait_for_function("() => document.querySelector('[data-testid=output-size]').textContent.startsWith('3 × 3')")
    stage = page.locator("#stage-heading").bounding_box()
    assert 0 <= stage["y"] <= 720 and page.evaluate("() => window.scrollY") == 0  # nothing scrolled away
    assert page.get_by_test_id("output-cell").first.bounding_box()["y"] < 720
    page.screenshot(path="test-results/arithmetic-cases-1280x720.png")
    page.console_errors.check()


def test_the_lectures_32x32x3_volume_fits_a_projector_as_a_window_with_a_jump_to(page_at, server_url):
    page = page_at(1280, 720)
    page.goto(f"{server_url}/arithmetic")
    page.get_by_test_id("output-cell").first.wait_for()
    page.locator("[data-testid=preset][data-preset=lecture-volume-1]").click()
    page.wait_for_function("() => document.querySelector('[data-testid=step-counter]').textContent === 'Step 1 of 784'")
    slices = page.get_by_test_id("channel-slice")
    assert slices.count() == 3 and "rows 0–6, cols 0–6" in slices.first.inner_text()
    assert slices.first.locator("text").count() == 49  # a 7x7 window, every number shown
    parts = [page.locator(".volume-part").nth(k).bounding_box() for k in range(3)]
    assert len({round(p["y"]) for p in parts}) == 1  # input, filters and output side by side
    assert max(p["y"] + p["height"] for p in parts) <= 720  # on one projector screen
    page.get_by_test_id("jump-row").fill("5")
    page.get_by_test_id("jump-col").fill("7")
    page.get_by_test_id("jump-go").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=step-counter]').textContent === 'Step 148 of 784'"
    )
    assert "map 0, cell (5, 7)" in page.get_by_test_id("volume-sum").inner_text()
    assert "rows 4–10, cols 6–12" in slices.first.inner_text()  # the window follows the kernel
    page.screenshot(path="test-results/arithmetic-volume-32x32x3-1280x720.png")
    page.console_errors.check()


def test_an_error_sits_beside_its_field_and_the_figures_depending_on_it_are_cleared(page, server_url):
    open_page(page, server_url, "?mode=conv&input_size=5&kernel_size=3")
    page.wait_for_function("() => document.querySelector('[data-testid=parameters]').textContent.includes('= 280')")
    page.get_by_test_id("groups").fill("2")
    page.get_by_test_id("groups").dispatch_event("change")
    error = page.locator("#groups-error")
    error.wait_for()
    assert "2 must divide both the input channels (3)" in error.inner_text()
    assert page.get_by_test_id("groups").get_attribute("aria-invalid") == "true"
    groups, beside = page.get_by_test_id("groups").bounding_box(), error.bounding_box()
    assert 0 < beside["y"] - (groups["y"] + groups["height"]) < 40  # right under the field
    assert "280" not in page.get_by_test_id("parameters").inner_text()  # no stale count
    assert page.get_by_test_id("pytorch-line").inner_text() == ""
    page.get_by_test_id("groups").fill("3")
    page.get_by_test_id("groups").fill("1")
    page.get_by_test_id("groups").dispatch_event("change")
    page.wait_for_function("() => !document.querySelector('#groups-error')")
    assert "= 280" in page.get_by_test_id("parameters").inner_text()
    page.console_errors.check(allowed=("422",))


def test_a_kernel_that_does_not_fit_leaves_the_inputs_values_alone_and_says_so(page, server_url):
    open_page(page, server_url, "?mode=conv&input_size=5&kernel_size=3")
    before = page.evaluate(
        "() => [...document.querySelectorAll('#input-grid text[data-cell]')].map(t => t.textContent)"
    )
    page.get_by_test_id("kernel-size").fill("9")
    page.get_by_test_id("kernel-size").dispatch_event("change")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=output-size]').textContent.includes('does not fit')"
    )
    after = page.evaluate("() => [...document.querySelectorAll('#input-grid text[data-cell]')].map(t => t.textContent)")
    assert after == before and len(after) == 25  # the lecture's 5x5 numbers, not zeros
    assert page.locator("#input-grid rect.uncovered").count() == 0
    assert "does not fit, so nothing is computed" in page.locator("#input-caption").inner_text()
    assert page.get_by_test_id("input-values").input_value().split() == before
    page.console_errors.check()
