"""The training page in a real lecture, round three: every value a student types into a layer row sticks
(by click, by Tab and by tap) and is the one trained; a small data set brings its own defaults and the
fine-tuned run is shown beside its from-scratch twin with both curves; every run has a seed the page shows
and repeats; the curves come into the projector's first screen with labels that can be read; and on a phone
the type menus say their type and the shape table scrolls as a region of its own."""

from __future__ import annotations

import time

import numpy as np
import pytest

from engine.symbols import draw_symbol

pytestmark = pytest.mark.browser

# What a student types into the Tiny design's rows (conv, relu, maxpool, flatten, dropout, linear): every field
# of every row changes (the output layer's 10 units are typed again), and the network still fits 28x28 digits.
TYPED = {
    0: {"filters": "8", "kernel_size": "3", "stride": "2", "padding": "1", "dilation": "2"},
    2: {"kernel_size": "2", "stride": "2"},
    4: {"rate": "0.25"},
    5: {"units": "10"},
}
EXPECTED = [
    {
        "type": "conv",
        "filters": 8,
        "kernel_size": 3,
        "stride": 2,
        "padding": 1,
        "dilation": 2,
        "padding_mode": "reflect",
    },
    {"type": "relu"},
    {"type": "maxpool", "kernel_size": 2, "stride": 2},
    {"type": "flatten"},
    {"type": "dropout", "rate": 0.25},
    {"type": "linear", "units": 10},
]


def tiny_with_dropout(page, server_url):
    page.goto(f"{server_url}/train?preset=tiny&train_size=300&epochs=1")
    page.wait_for_selector("[data-testid=train-button]:not([disabled])")
    page.select_option("#add-type", "dropout")
    page.get_by_test_id("add-layer").click()  # a dropout before the output layer, opened
    rows = page.get_by_test_id("layer-row")
    for k in range(rows.count()):
        if rows.nth(k).get_by_test_id("layer-summary").get_attribute("aria-expanded") == "false":
            rows.nth(k).get_by_test_id("layer-summary").click()
    return rows


def focus_by_tab(page, field) -> None:
    """Presses Tab (from wherever the focus is) until ``field`` has the focus, as a keyboard user moves."""
    for _ in range(40):
        if field.evaluate("f => f === document.activeElement"):
            return
        page.keyboard.press("Tab")
    raise AssertionError("Tab never reached the field")


def type_into(page, field, text: str, how: str) -> None:
    if how == "click":
        field.click()
    elif how == "tap":
        field.tap()
    else:
        focus_by_tab(page, field)
    assert field.evaluate("f => f === document.activeElement"), f"{how} left the focus elsewhere"
    page.keyboard.press("Control+A")
    page.keyboard.type(text)


@pytest.mark.parametrize("how", ["click", "tab", "tap"])
def test_every_value_typed_into_every_layer_row_sticks_and_is_trained(page_at, server_url, how):
    page = page_at(1280, 900, touch=how == "tap")
    rows = tiny_with_dropout(page, server_url)
    if how == "tab":
        rows.nth(0).get_by_test_id("layer-type").focus()
    for index, fields in TYPED.items():
        for key, text in fields.items():
            type_into(page, rows.nth(index).locator(f"[data-field={key}]"), text, how)
    rows.nth(0).locator("[data-field=padding_mode]").select_option("reflect")
    for index, fields in TYPED.items():  # nothing was lost while moving on to the next field
        for key, text in fields.items():
            assert rows.nth(index).locator(f"[data-field={key}]").input_value() == text, (index, key)
    page.wait_for_selector("[data-testid=train-button]:not([disabled])")
    assert page.get_by_test_id("param-count").inner_text() != "–"
    page.get_by_test_id("train-button").click()
    page.wait_for_url(lambda url: "model=" in url)
    job = page.url.split("model=")[1].split("&")[0]
    trained = page.request.get(f"{server_url}/api/models/{job}").json()
    assert trained["architecture"]["layers"] == EXPECTED
    page.console_errors.check()


def drawn_data_set(page, server_url, per_class: int) -> str:
    rng = np.random.default_rng(per_class)
    examples = [{"label": c, "pixels": draw_symbol(c, rng).tolist()} for c in ("check", "cross", "circle")]
    examples = [e for e in examples for _ in range(1)] * per_class
    made = page.request.post(
        f"{server_url}/api/datasets", data={"name": "symbols", "classes": ["check", "cross", "circle"]}
    )
    dataset = made.json()["id"]
    more = [
        {"label": c, "pixels": draw_symbol(c, rng).tolist()}
        for c in ("check", "cross", "circle")
        for _ in range(per_class)
    ]
    assert page.request.post(f"{server_url}/api/datasets/{dataset}/images", data={"examples": more}).ok
    return dataset


def wait_done(page, server_url, job_id: str) -> dict:
    deadline = time.monotonic() + 120
    while True:
        record = page.request.get(f"{server_url}/api/models/{job_id}").json()
        if record["status"] == "done":
            return record
        assert time.monotonic() < deadline and record["status"] in ("queued", "running"), record["status"]
        time.sleep(0.3)


def test_a_small_data_set_fine_tunes_with_its_own_defaults_beside_its_twin_and_repeats_a_seed(page_at, server_url):
    page = page_at(1280, 720)
    page.goto(f"{server_url}/")
    dataset = drawn_data_set(page, server_url, per_class=6)
    page.goto(f"{server_url}/train?dataset={dataset}&start=lenet")  # the data page's "Train on it"
    page.wait_for_function("() => document.querySelector('[data-testid=training-defaults]').textContent.length > 0")
    assert (
        page.get_by_test_id("training-defaults")
        .inner_text()
        .startswith("Small data set: 20 epochs, batch 8, augmented")
    )
    page.wait_for_function("() => document.querySelector('[data-testid=epochs]').value === '20'")
    assert page.get_by_test_id("batch-size").input_value() == "8" and page.get_by_test_id("augment").is_checked()
    assert page.get_by_test_id("start-from").is_checked()
    page.wait_for_selector("[data-testid=train-button]:not([disabled])")
    page.get_by_test_id("train-button").click()
    # the curves come into the projector's first screen, drawn at the size they are shown (12 px labels)
    page.wait_for_function("() => Number(document.querySelector('[data-testid=loss-chart]').dataset.points) > 0")
    page.wait_for_function("() => document.querySelector('[data-testid=loss-chart]').getBoundingClientRect().top >= 0")
    chart = page.get_by_test_id("loss-chart").bounding_box()
    assert 0 <= chart["y"] and chart["y"] + chart["height"] <= 720
    assert page.get_by_test_id("loss-chart").evaluate(
        "c => c.width === Math.round(c.clientWidth * devicePixelRatio)"
    )  # so the chart's 12 px font is 12 px on the screen
    page.wait_for_selector("[data-testid=comparison-run]", timeout=90_000)
    fine, scratch = (float(t.rstrip("%")) for t in page.get_by_test_id("comparison-accuracy").all_inner_texts())
    assert fine >= 90 and fine >= scratch - 5
    assert page.locator("[data-testid=comparison-run] canvas").count() == 4  # loss and held-out accuracy, each
    seed_words = page.get_by_test_id("job-seed").inner_text()
    first = page.url.split("model=")[1].split("&")[0]
    seed = int(seed_words.split("seed ")[1].rstrip("."))
    assert wait_done(page, server_url, first)["seed"] == seed
    page.get_by_test_id("run-again").click()
    page.wait_for_url(lambda url: f"model={first}" not in url and "model=" in url)
    again = page.url.split("model=")[1].split("&")[0]
    repeat = wait_done(page, server_url, again)
    assert repeat["seed"] == seed and repeat["settings"]["epochs"] == 20
    page.screenshot(path="test-results/train-fine-tune-1280x720.png", full_page=True)
    page.console_errors.check()


def test_on_a_phone_each_type_menu_says_its_type_and_the_shape_table_scrolls_on_its_own(page_at, server_url):
    page = page_at(390, 844, touch=True)
    page.goto(f"{server_url}/train")
    page.wait_for_selector("[data-testid=train-button]:not([disabled])")
    menus = page.get_by_test_id("layer-type")
    for k in range(menus.count()):
        fits = menus.nth(k).evaluate(
            """s => { const c = document.createElement('canvas').getContext('2d'); c.font = getComputedStyle(s).font;
                      return c.measureText(s.selectedOptions[0].text).width + 24 <= s.clientWidth; }"""
        )
        assert fits, f"layer {k + 1}'s type menu hides its type"
    region = page.get_by_test_id("shape-table").locator("xpath=..")
    assert region.get_attribute("tabindex") == "0" and region.get_attribute("role") == "region"
    region.focus()
    page.keyboard.press("End")  # the keyboard scrolls the region to its last column
    region.evaluate("r => { r.scrollLeft = r.scrollWidth; }")
    last = page.locator("[data-testid=shape-row]").first.locator("td").last.bounding_box()
    frame = region.bounding_box()
    assert last["x"] + last["width"] <= frame["x"] + frame["width"] + 1  # the receptive field, reachable
    heights = [r.bounding_box()["height"] for r in page.locator("[data-testid=shape-row]").all()]
    assert max(heights) < 60  # formulas on one line, not five
    page.get_by_test_id("layer-row").first.scroll_into_view_if_needed()
    page.screenshot(path="test-results/train-phone-rows-390x844.png")
    page.console_errors.check()


def test_a_frozen_layer_is_marked_in_words(page_at, server_url):
    page = page_at(390, 844, touch=True)
    page.goto(f"{server_url}/")
    dataset = drawn_data_set(page, server_url, per_class=5)
    page.goto(f"{server_url}/train?dataset={dataset}&start=lenet")
    page.wait_for_selector("[data-testid=layer-row].locked")
    marker = page.locator("[data-testid=layer-row].locked").first.evaluate(
        "r => getComputedStyle(r, '::after').content"
    )
    assert marker == '"locked: keeps its weights"'
    fine_tune = page.get_by_test_id("fine-tune").bounding_box()
    assert fine_tune["width"] >= 300  # a row of its own, not squeezed beside another field
    page.get_by_test_id("fine-tune").scroll_into_view_if_needed()
    page.screenshot(path="test-results/train-fine-tune-390x844.png")
    page.console_errors.check()
