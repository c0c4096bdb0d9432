"""The arithmetic page's volume mode in real Chromium: cs231n's demo, cell by cell, and the PyTorch line."""

import httpx
import pytest

pytestmark = pytest.mark.browser

CS231N = "/arithmetic?mode=volume&input_size=5&channels=3&filters=2&kernel_size=3&stride=2&padding=1"


def test_the_cs231n_preset_steps_through_an_output_volume_of_3x3x2(page, server_url):
    page.goto(server_url + CS231N)
    page.wait_for_selector("[data-testid=channel-slice]")
    assert page.get_by_test_id("channel-slice").count() == 3
    assert page.get_by_test_id("filter-stack").count() == 2
    assert page.get_by_test_id("output-map").count() == 2
    assert page.get_by_test_id("step-counter").text_content() == "Step 1 of 18"
    assert page.get_by_test_id("pytorch-line").text_content() == "nn.Conv2d(3, 2, kernel_size=3, stride=2, padding=1)"
    assert "seed=" in page.url  # the random small numbers are reproducible from the link
    # each cell's printed sum adds up to its printed value, and that value is the server's
    seen = []
    for step in range(18):
        text = page.get_by_test_id("volume-sum").text_content()
        where, text = text.split(": ", 1)  # "map 0, cell (0, 0): -3 + 1 + 2 + 0 = 0"
        assert where.startswith("map ")
        terms, value = text.split(" = ")
        assert sum(float(t) for t in terms.split(" + ")) == pytest.approx(float(value))
        seen.append(float(value))
        if step < 17:
            page.get_by_test_id("step-next").click()
            page.wait_for_function(
                "(n) => document.querySelector('[data-testid=step-counter]').textContent === `Step ${n} of 18`",
                arg=step + 2,
            )
    # ...and the values are the server's output volume, filter by filter
    cells = page.locator("[data-testid=output-map] text").all_text_contents()
    assert [float(c) for c in cells] == seen
    page.console_errors.check()


def test_the_lecture_volumes_show_a_window_of_numbers_and_fill_28x28x6(page, server_url):
    page.goto(server_url + "/arithmetic")
    page.locator("[data-preset=lecture-volume-6]").click()
    page.wait_for_selector("[data-testid=step-counter]:has-text('of 4704')")
    assert page.get_by_test_id("output-map").count() == 6
    assert "shown as the 7×7 window around the kernel" in page.locator("#volume-note").text_content()
    assert "6 × (5·5·3 + 1) = 456" in page.get_by_test_id("parameters").text_content()
    page.locator("[data-testid=output-map]").nth(2).locator("[data-testid=output-cell]").first.click()
    page.wait_for_selector("[data-testid=step-counter]:has-text('Step 1569 of 4704')")
    assert " = " in page.get_by_test_id("volume-sum").text_content()
    assert httpx.get(server_url + "/healthz").status_code == 200
    page.console_errors.check()


def test_rectangular_sizes_a_flipped_kernel_and_the_pytorch_line(page, server_url):
    page.goto(server_url + "/arithmetic?mode=conv&input_size=7,5&kernel_size=3,2&stride=2,1&padding=1,0&dilation=1,2")
    page.wait_for_selector("[data-testid=output-cell]")
    assert not page.get_by_test_id("square").is_checked()
    assert page.get_by_test_id("output-size").text_content().startswith("4 × 3")
    assert page.locator("[data-testid=output-cell]").count() == 12
    assert page.locator("#input-grid rect.cell").count() == 9 * 5  # 7 rows padded by 1 each side, 5 columns
    formula = page.get_by_test_id("formula").text_content()
    assert formula.startswith("height") and "width" in formula
    line = page.get_by_test_id("pytorch-line").text_content()
    assert line == "nn.Conv2d(3, 10, kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2))"
    page.get_by_test_id("square").check()
    page.wait_for_function("() => new URLSearchParams(location.search).get('input_size') === '7'")

    # true convolution turns the kernel by 180 degrees: a weight at the top moves to the bottom
    kernel = "[[0,1,0],[0,0,0],[0,0,0]]"
    page.goto(server_url + f"/arithmetic?mode=conv&input_size=5&kernel_size=3&kernel={kernel}")
    page.wait_for_selector("[data-testid=step-detail]:has-text('output (0, 0)')")
    assert page.get_by_test_id("step-detail").text_content().endswith("= 1")  # the lecture image's (0, 1)
    page.get_by_test_id("true-convolution").check()
    page.wait_for_function("() => document.querySelector('[data-testid=step-detail]').textContent.endsWith('= 0')")
    assert "flip=true" in page.url
    page.console_errors.check()


def test_switching_modes_never_changes_a_field_and_volume_mode_keeps_the_lectures_760(page, server_url):
    """The lecture's layer: 32x32x3, ten 5x5 filters, padding 2: 10 × (5·5·3 + 1) = 760 in every mode."""
    page.goto(server_url + "/arithmetic?mode=conv&input_size=32&kernel_size=5&padding=2")
    page.wait_for_selector("[data-testid=output-cell]")
    assert page.get_by_test_id("in-channels").input_value() == "3"
    assert page.get_by_test_id("filters").input_value() == "10"
    page.wait_for_function("() => document.querySelector('[data-testid=parameters]').textContent.includes('= 760')")
    page.get_by_test_id("mode").select_option("volume")
    page.wait_for_selector("[data-testid=channel-slice]")
    assert (
        page.get_by_test_id("filters").input_value() == "10" and page.get_by_test_id("in-channels").input_value() == "3"
    )
    assert "10 × (5·5·3 + 1) = 760" in page.get_by_test_id("parameters").text_content()
    assert page.get_by_test_id("output-map").count() == 6  # what is drawn is bounded, and said
    assert "The layer has 10 filters; the stage draws the first 6." in page.get_by_test_id("volume-note").inner_text()
    page.get_by_test_id("filters").fill("12")
    page.get_by_test_id("filters").dispatch_event("change")
    page.wait_for_function("() => document.querySelector('[data-testid=parameters]').textContent.includes('= 912')")
    assert page.get_by_test_id("filters").input_value() == "12"  # never rewritten to what is drawn
    page.get_by_test_id("mode").select_option("conv")
    page.wait_for_selector("#plane-stage:not([hidden]) [data-testid=output-cell]")
    assert page.get_by_test_id("filters").input_value() == "12"
    page.console_errors.check()


def test_volume_numbers_are_12_px_or_more_and_the_note_says_what_is_not_drawn(page_at, server_url):
    page = page_at(1280, 720)
    page.goto(server_url + "/arithmetic?mode=volume&input_size=32&kernel_size=5&channels=3&filters=1")
    page.wait_for_selector("[data-testid=channel-slice] text")
    sizes = page.evaluate(
        "() => [...document.querySelectorAll('#volume-stage svg text')].map(t => +t.getAttribute('font-size'))"
    )
    assert sizes and min(sizes) >= 12
    hidden_note = page.get_by_test_id("numbers-hidden")
    assert "the 28×28 output maps" in hidden_note.inner_text() and "filters" not in hidden_note.inner_text()
    assert page.locator("[data-testid=output-map] text").count() == 0  # as the note says
    assert page.locator("[data-testid=filter-stack] text").count() == 75  # 5x5x3 weights, drawn as said
    parts = [page.locator(".volume-part").nth(k).bounding_box() for k in range(3)]
    assert len({round(p["y"]) for p in parts}) == 1 and max(p["y"] + p["height"] for p in parts) <= 720
    page.goto(server_url + CS231N)
    page.wait_for_selector("[data-testid=output-map] text")
    assert page.get_by_test_id("numbers-hidden").is_hidden()  # every number drawn: no note
    page.screenshot(path="test-results/arithmetic-volume-numbers-1280x720.png")
    page.console_errors.check()
