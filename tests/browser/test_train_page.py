"""The training page in real Chromium: design, train, watch, replay, use the model everywhere."""

from __future__ import annotations

import pytest

from tests.browser.drawing import ONE, draw, wait_for_guess

pytestmark = pytest.mark.browser


def canvas_pixels(page, selector: str) -> list[list[int]]:
    """Every canvas matching ``selector``, as its RGBA bytes."""
    return page.evaluate(
        """(selector) => [...document.querySelectorAll(selector)].map((c) =>
            Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data))""",
        selector,
    )


def record_chart_growth(page) -> None:
    """Keeps, in window.chartLog, the loss chart's point count and the job status each time the chart is redrawn."""
    page.evaluate(
        """() => {
            window.chartLog = [];
            const chart = document.querySelector('[data-testid=loss-chart]');
            new MutationObserver(() => window.chartLog.push([Number(chart.dataset.points),
                document.querySelector('[data-testid=status]').textContent]))
              .observe(chart, { attributes: true, attributeFilter: ['data-points'] });
        }"""
    )


@pytest.fixture
def train_page(page, server_url):
    page.goto(server_url + "/train")
    page.wait_for_selector("[data-testid=shape-row]")
    return page


def test_train_tiny_watch_it_learn_replay_it_and_try_it(train_page, server_url):
    page = train_page
    page.click("[data-preset=tiny]")
    page.wait_for_selector("[data-testid=train-button]:not([disabled])")
    assert page.get_by_test_id("layer-row").count() == 5
    assert page.get_by_test_id("param-count").text_content() == "1,554"
    conv1 = page.locator("[data-testid=shape-row][data-layer=conv1]")
    assert "4 × (5·5·1 + 1) = 104" in conv1.text_content() and "24 × 24" in conv1.text_content()
    record_chart_growth(page)
    page.get_by_test_id("train-button").click()
    page.wait_for_selector("[data-testid=progress][aria-valuenow='100']", timeout=60_000)
    page.screenshot(path="test-results/train-page-while-training.png", full_page=True)
    page.wait_for_selector("[data-testid=confusion-cell]", timeout=60_000)
    assert "model=" in page.url

    # the curve gained points while the job was still training
    log = page.evaluate("() => window.chartLog")
    while_training = [n for n, status in log if status.startswith("Training")]
    assert len(set(while_training)) >= 2 and while_training == sorted(while_training), log

    accuracy = page.get_by_test_id("test-accuracy").text_content()
    assert "of 800 pictures" in accuracy and float(accuracy.split("%")[0]) > 50
    counts = [
        int(c) for c in page.locator("[data-testid=confusion-cell]").evaluate_all("cs => cs.map(c => c.dataset.count)")
    ]
    assert len(counts) == 100 and sum(counts) == 800
    page.locator("[data-testid=confusion-cell][data-true='4'][data-guess='4']").click()
    page.wait_for_selector("[data-testid=misclassified-image]")
    # the count and the digit class stay apart: never "73 4 pictures", always "… pictures of “4” read as “4”"
    assert " pictures of “4” read as “4”" in page.get_by_test_id("misclassified").text_content()

    # the scrubber goes through the snapshots: the first filters are not the last
    scrubber = page.get_by_test_id("time-scrubber")
    assert int(scrubber.get_attribute("max")) >= 2
    scrubber.fill("0")
    page.wait_for_function("() => document.querySelector('#replay-step').textContent.startsWith('step 0 ')")
    first = canvas_pixels(page, "[data-testid=replay-filters] canvas.filter-tile")
    page.wait_for_selector("[data-testid=replay-prediction]:has-text('At step 0')")
    scrubber.fill(scrubber.get_attribute("max"))
    page.wait_for_function("() => !document.querySelector('#replay-step').textContent.startsWith('step 0 ')")
    last = canvas_pixels(page, "[data-testid=replay-filters] canvas.filter-tile")
    assert len(first) == 4 and first != last
    # a curve of many points, filters large enough for a projector, and what training changed under each
    assert int(page.get_by_test_id("loss-chart").get_attribute("data-points")) >= 50
    tile = page.locator("[data-testid=filters] [data-testid=filter-tile]").first.bounding_box()
    assert tile["width"] >= 96 and page.locator("[data-testid=filters] [data-testid=filter-change]").count() == 4
    # Play walks through the snapshots to the last one by itself
    scrubber.fill("0")
    page.get_by_test_id("replay-play").click()
    page.wait_for_function(
        "() => { const s = document.querySelector('[data-testid=time-scrubber]'); return s.value === s.max; }",
        timeout=30_000,
    )
    page.wait_for_function("() => document.querySelector('[data-testid=replay-play]').textContent.includes('Play')")
    assert page.get_by_test_id("replay-bars").locator("li").count() == 10
    page.screenshot(path="test-results/train-page-done.png", full_page=True)
    page.console_errors.check()

    # Try it: the drawing page with this model, whose layers are conv1, pool1 and the output
    page.get_by_test_id("try-model").click()
    page.wait_for_selector("[data-testid=layer]")
    assert [t.split(" ")[0] for t in page.locator("[data-testid=layer] h3").all_text_contents()] == [
        "conv1",
        "pool1",
        "output",
    ]
    draw(page, ONE)
    wait_for_guess(page, 1)
    assert page.locator("[data-testid=layer][data-layer=conv1] [data-testid=activation-map]").count() == 4
    page.console_errors.check()


def test_a_design_that_does_not_fit_is_marked_at_its_row_and_cannot_train(train_page):
    page = train_page
    page.click("[data-preset=broken]")
    error = page.get_by_test_id("spec-error")
    error.wait_for()
    assert error.text_content() == (
        "layer 7 (conv3): a 5x5 kernel does not fit a 2x2 input: (2 + 2*0 - 1*(5-1) - 1)/1 + 1 = -2"
    )
    assert page.locator("[data-testid=shape-row].broken").get_attribute("data-index") == "6"
    assert "broken" in page.get_by_test_id("layer-row").nth(6).get_attribute("class")
    assert page.get_by_test_id("train-button").is_disabled()
    # fixing it (a 1x1 kernel fits a 2x2 map) turns Train back on
    page.get_by_label("Layer 7 kernel").fill("1")
    page.get_by_label("Layer 7 kernel").dispatch_event("change")
    page.wait_for_selector("[data-testid=train-button]:not([disabled])")
    assert page.get_by_test_id("spec-error").is_hidden()
    page.console_errors.check()


def test_the_design_lives_in_the_url(page, server_url):
    page.goto(server_url + "/train?preset=tinyvgg&dataset=fashion&epochs=3")
    page.wait_for_selector("[data-testid=shape-row][data-layer=conv4]")
    assert page.get_by_test_id("layer-row").count() == 12
    assert page.get_by_test_id("dataset").input_value() == "fashion"
    assert page.get_by_test_id("epochs").input_value() == "3"
    page.get_by_test_id("add-layer").click()
    page.wait_for_function("() => location.search.includes('spec=')")
    page.reload()
    page.wait_for_selector("[data-testid=shape-row]")
    assert page.get_by_test_id("layer-row").count() == 13
    page.console_errors.check()


def test_reloading_mid_training_reconnects_to_the_job(train_page):
    page = train_page
    page.click("[data-preset=lenet]")
    page.get_by_test_id("epochs").fill("10")
    page.wait_for_selector("[data-testid=train-button]:not([disabled])")
    page.get_by_test_id("train-button").click()
    page.wait_for_selector("[data-testid=status]:has-text('Training:')", timeout=30_000)
    url = page.url
    page.reload()
    assert page.url == url and "model=" in url
    page.wait_for_selector("[data-testid=status]:has-text('Training:')", timeout=30_000)
    assert int(page.get_by_test_id("loss-chart").get_attribute("data-points")) > 0
    page.get_by_test_id("stop-button").click()
    page.wait_for_selector("[data-testid=status]:has-text('Stopped')", timeout=15_000)
    assert page.get_by_test_id("train-button").is_enabled()
    page.console_errors.check()


def test_the_clothing_model_gallery_classifies_a_clicked_picture(page, server_url):
    page.goto(server_url + "/?model=fashion")
    page.wait_for_selector("[data-testid=gallery-image]")
    assert page.get_by_test_id("draw-canvas").is_hidden()
    page.get_by_test_id("gallery-image").nth(1).click()  # the second test picture: a trouser
    page.wait_for_function("() => document.querySelector('[data-testid=prediction]').textContent === 'Trouser'")
    assert page.get_by_test_id("true-label").text_content() == "The test set says this is: Trouser."
    assert page.get_by_test_id("page-title").text_content() == "Show it a picture, watch the network read it"
    assert "Draw a digit" not in page.title() and "Ankle boot" in page.locator("#page-intro").text_content()
    # the output's class names are whole, not clipped to "Ankle boc"
    clipped = page.evaluate(
        "() => [...document.querySelectorAll('.unit-labels span')].filter((s) => s.scrollHeight > s.clientHeight + 1"
        " || s.scrollWidth > s.clientWidth + 1).map((s) => s.textContent)"
    )
    assert clipped == []
    assert page.get_by_test_id("probability-bar").count() == 10
    assert page.locator("[data-testid=layer]").count() == 6
    picker = page.get_by_test_id("model-picker")
    assert picker.input_value() == "fashion" and picker.locator("option").count() >= 2
    page.console_errors.check()


def test_an_unknown_model_is_said_in_words(page, server_url):
    page.goto(server_url + "/?model=nosuchmodel")
    page.get_by_test_id("model-error").wait_for()
    words = page.get_by_test_id("model-error").text_content()
    assert "There is no model “nosuchmodel” in your workspace" in words and "share link" in words  # and what to do
    assert page.locator("header nav a").count() >= 4  # the navigation stays
    page.console_errors.check(allowed=("status of 404",))


def test_a_pooling_stride_that_follows_the_kernel_is_shown_as_such(train_page):
    """The Tiny preset's max pool has no stride of its own: its row and field say "= kernel (4)", as it trains."""
    train_page.click("[data-preset=tiny]")
    pool = train_page.locator("[data-testid=layer-row]").nth(2)
    assert pool.get_by_test_id("layer-summary").inner_text().endswith("kernel 4×4, stride = kernel (4)")
    pool.get_by_test_id("layer-summary").click()  # a row opens to show its fields
    stride = train_page.locator("[data-testid=layer-row]").nth(2).locator("[data-field=stride]")
    stride.wait_for()
    assert stride.input_value() == "" and stride.get_attribute("placeholder") == "= kernel (4)"
    rows = "[...document.querySelectorAll('[data-testid=shape-row]')]"
    train_page.wait_for_function(f"() => {rows}.some((r) => r.textContent.includes('4 × 6 × 6'))")
    added = train_page.locator("[data-testid=add-layer]")
    train_page.select_option("#add-type", "dropout")
    added.click()
    rate = train_page.locator("[data-testid=layer-row]").nth(4).locator("[data-field=rate]")
    assert rate.input_value() == "0.5"  # a new layer opens; the engine's default, from GET /api/architectures/layers


def test_the_settings_show_whole_names_and_a_real_checkbox(train_page):
    dataset = train_page.get_by_test_id("dataset")
    fits = dataset.evaluate(
        """s => { const c = document.createElement('canvas').getContext('2d'); c.font = getComputedStyle(s).font;
                  return c.measureText(s.selectedOptions[0].text).width + 28 <= s.clientWidth; }"""
    )
    assert fits  # "Handwritten digits (MNIST)" whole, beside the select's arrow
    box = train_page.get_by_test_id("augment").bounding_box()
    assert box["width"] >= 16 and box["height"] >= 16  # not a 6 px dot


def test_on_a_phone_the_shapes_table_and_the_confusion_matrix_stay_within_the_screen(page_at, server_url):
    page = page_at(390, 844, touch=True)
    page.goto(f"{server_url}/train?preset=tiny&train_size=600&epochs=1")
    page.wait_for_selector("[data-testid=train-button]:not([disabled])")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    page.get_by_test_id("train-button").click()
    page.wait_for_selector("[data-testid=confusion-cell]", timeout=60_000)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    for table in ("shape-table", "confusion-matrix"):
        box = page.get_by_test_id(table).locator("xpath=..").bounding_box()  # its scrolling frame
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, table
    matrix = page.get_by_test_id("confusion-matrix").bounding_box()
    frame = page.get_by_test_id("confusion-matrix").locator("xpath=..").bounding_box()
    assert matrix["x"] + matrix["width"] <= frame["x"] + frame["width"] + 1  # all ten columns in view
    page.get_by_test_id("confusion-matrix").scroll_into_view_if_needed()
    page.screenshot(path="test-results/train-phone-390x844.png")
    page.console_errors.check()


def test_on_a_projector_the_design_is_one_line_a_layer_and_the_curves_sit_by_train(page_at, server_url):
    page = page_at(1280, 720)
    page.goto(f"{server_url}/train")
    page.wait_for_selector("[data-testid=train-button]:not([disabled])")
    rows = page.get_by_test_id("layer-row")
    assert rows.count() == 14 and page.locator("[data-field]").count() == 0  # LeNet, every row collapsed
    heights = [rows.nth(k).bounding_box()["height"] for k in range(14)]
    assert max(heights) < 56  # one line each
    first = rows.first.get_by_test_id("layer-summary").inner_text()
    assert first.endswith("filters 6, kernel 5×5, stride 1, padding 0")
    train = page.get_by_test_id("train-button").bounding_box()
    live = page.locator("#live-heading").bounding_box()
    assert live["y"] < 720 and live["y"] - (train["y"] + train["height"]) < 200  # the curves right under Train
    rows.first.get_by_test_id("layer-summary").press("Enter")  # the keyboard opens a row too
    assert rows.first.locator("[data-field=filters]").input_value() == "6"
    page.screenshot(path="test-results/train-design-1280x720.png")
    page.console_errors.check()
