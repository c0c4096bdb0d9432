"""Your own model on the drawing page: import an .onnx file (a BatchNorm CNN built by the suite), read how
it was converted, draw on it with its own class names, and download any model as ONNX or PyTorch."""

from __future__ import annotations

import onnx
import pytest

from tests.browser.conftest import RESULTS, watch_console
from tests.browser.drawing import ONE, count_pixels, draw, open_digits_page
from tests.onnx_collection import COLLECTION, File
from tests.onnx_files import Builder

pytestmark = pytest.mark.browser


def digit_cnn_file(path) -> str:
    """A 1x28x28 CNN with BatchNorm, as a PyTorch export would write it, with three class names inside."""
    b = Builder((1, 28, 28), seed=4)
    b.conv(6, 5, channels=1, pads=[2, 2, 2, 2])
    b.batch_norm(6)
    b.op("Relu")
    b.op("MaxPool", kernel_shape=[2, 2], strides=[2, 2])
    b.conv(8, 3, channels=6)
    b.op("Relu")
    b.op("GlobalAveragePool")
    b.op("Flatten", axis=1)
    b.gemm(3, 8)
    b.op("Softmax", axis=1)
    model = b.model()
    onnx.helper.set_model_props(model, {"labels": '["check", "cross", "circle"]'})
    onnx.save(model, str(path))
    return str(path)


@pytest.fixture
def student(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 720}, accept_downloads=True)
    yield watch_console(context.new_page())
    context.close()


def test_an_imported_model_opens_with_its_report_and_reads_a_drawing(student, server_url, tmp_path):
    page = student
    open_digits_page(page, server_url)
    page.get_by_test_id("import-model").locator("summary").click()
    page.get_by_test_id("import-file").set_input_files(digit_cnn_file(tmp_path / "shapes.onnx"))
    page.get_by_test_id("import-preprocess").select_option("digit")
    page.get_by_test_id("import-submit").click()
    page.wait_for_url(lambda url: "model=i" in url and "imported=1" in url)
    page.wait_for_selector("[data-testid=layer]")
    report = page.get_by_test_id("import-report")
    report.wait_for()
    text = report.inner_text()
    assert "shapes: imported from shapes.onnx" in text
    assert "folded into conv1" in text and "final Softmax dropped" in text
    assert "GlobalAveragePool" in text and "No data set was given" in text
    picker = page.get_by_test_id("model-picker")
    assert picker.locator("optgroup[label=Yours] option").first.inner_text().startswith("shapes (no data set")
    assert page.get_by_test_id("page-title").inner_text() == "Draw a check, cross or circle, watch the network read it"
    page.screenshot(path=RESULTS / "import-report-1280x720.png")
    page.get_by_test_id("draw-canvas").scroll_into_view_if_needed()
    draw(page, ONE)
    guess = "document.querySelector('[data-testid=prediction]').textContent.trim()"
    page.wait_for_function(f"() => ['check', 'cross', 'circle'].includes({guess})", timeout=5000)
    page.screenshot(path=RESULTS / "import-guess-1280x720.png", full_page=True)

    with page.expect_download() as download:
        page.get_by_test_id("export-onnx").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == "shapes.onnx"
    onnx.checker.check_model(onnx.load(str(saved)))
    with page.expect_download() as download:
        page.get_by_test_id("export-pytorch").click()
    assert download.value.suggested_filename == "shapes.py"
    page.console_errors.check()


def test_a_file_that_is_not_onnx_is_refused_on_the_page(student, server_url, tmp_path):
    page = student
    open_digits_page(page, server_url)
    page.get_by_test_id("import-model").locator("summary").click()
    bad = tmp_path / "notes.onnx"
    bad.write_text("these are my lecture notes, not a model")
    page.get_by_test_id("import-file").set_input_files(str(bad))
    page.get_by_test_id("import-submit").click()
    error = page.get_by_test_id("import-error")
    error.wait_for()
    assert "not an ONNX model" in error.inner_text()
    page.console_errors.check(allowed=("422",))


def colour_cnn(path) -> str:
    """A 3x32x32 CNN (as CIFAR's are) with two classes and no data set."""
    b = Builder((3, 32, 32), seed=5)
    b.conv(4, 3, channels=3, pads=[1, 1, 1, 1])
    b.op("Relu")
    b.op("MaxPool", kernel_shape=[4, 4], strides=[4, 4])
    b.op("Flatten", axis=1)
    b.gemm(2, 4 * 8 * 8)
    model = b.model()
    onnx.helper.set_model_props(model, {"labels": '["day", "night"]'})
    onnx.save(model, str(path))
    return str(path)


def test_a_colour_model_reads_a_shipped_photo_in_colour_and_sums_over_three_channels(student, server_url, tmp_path):
    page = student
    open_digits_page(page, server_url)  # a workspace cookie first
    with open(colour_cnn(tmp_path / "colours.onnx"), "rb") as handle:
        answer = page.request.post(
            f"{server_url}/api/models/import",
            multipart={
                "file": {"name": "colours.onnx", "mimeType": "application/octet-stream", "buffer": handle.read()}
            },
        )
    assert answer.status == 201, answer.text()
    assert answer.json()["preprocess"] == "picture"  # a colour model without a data set takes whole pictures
    page.goto(f"{server_url}/?model={answer.json()['id']}")
    page.wait_for_selector("[data-testid=layer]")
    photos = page.get_by_test_id("sample-photo")
    assert photos.count() == 4
    photos.nth(1).click()  # the astronaut
    page.wait_for_function(
        "() => ['day', 'night'].includes(document.querySelector('[data-testid=prediction]').textContent.trim())"
    )
    colourful = count_pixels(page, "[data-testid=downsampled]", "Math.abs(r - b) > 40")
    assert colourful > 20  # red and blue differ: the input is painted in colour, not one grey channel
    tile = page.get_by_test_id("layer").nth(0).get_by_test_id("activation-map").nth(1)
    tile.hover(position={"x": 30, "y": 30})
    detail = page.get_by_test_id("unit-detail")
    detail.locator(".dot-product").wait_for()
    rows = detail.get_by_test_id("channel-row")
    assert rows.count() == 3  # conv1's sum runs over the red, green and blue channels
    assert [rows.nth(c).locator("figcaption").first.inner_text() for c in range(3)] == [
        "input, red",
        "input, green",
        "input, blue",
    ]
    assert rows.nth(0).locator("table.number-grid").nth(0).locator("td").count() == 9  # a 3x3 patch of red
    page.screenshot(path=RESULTS / "import-colour-1280x720.png")
    page.console_errors.check()


def wide_grey_file(path) -> str:
    """A 1x120x120 model with 40 maps in its first layer (more than a page of them)."""
    f = File(20)
    f.conv(1, 40, 3, pads=[1, 1, 1, 1])
    f.op("Relu")
    f.op("GlobalAveragePool")
    f.op("Flatten", axis=1)
    f.gemm(40, 10)
    path.write_bytes(f.bytes(["N", 1, 120, 120], 17))
    return str(path)


def test_a_keras_file_imports_with_its_preparation_and_shows_it_in_its_card(student, server_url, tmp_path):
    page = student
    open_digits_page(page, server_url)
    page.get_by_test_id("import-model").locator("summary").click()
    keras = tmp_path / "mobile.onnx"
    keras.write_bytes(COLLECTION["keras_mobilenet_tf2onnx"]())
    page.get_by_test_id("import-file").set_input_files(str(keras))
    page.get_by_test_id("import-input-range").select_option("0..255")
    page.get_by_test_id("import-mean").fill("0")
    page.get_by_test_id("import-submit").click()
    page.wait_for_url(lambda url: "model=i" in url and "imported=1" in url)
    report = page.get_by_test_id("import-report")
    report.wait_for()
    assert page.get_by_test_id("import-preparation").inner_text() == (
        "Pictures reach it in the range 0..255, then (x − mean) / std with mean 0, 0, 0 and std 1, 1, 1."
    )
    text = report.inner_text()
    assert "channels last (N x H x W x C): read channels first" in text and "'ai.onnx.ml' is declared" in text
    page.get_by_test_id("sample-photo").first.click()  # a colour model reads the shipped photos
    page.wait_for_function("() => document.querySelector('[data-testid=prediction]').textContent.trim() !== ''")
    page.screenshot(path=RESULTS / "import-keras-1280x720.png")
    page.console_errors.check()


def test_a_layer_of_many_maps_shows_a_page_of_them_then_more(student, server_url, tmp_path):
    page = student
    open_digits_page(page, server_url)
    page.get_by_test_id("import-model").locator("summary").click()
    page.get_by_test_id("import-file").set_input_files(wide_grey_file(tmp_path / "wide.onnx"))
    page.get_by_test_id("import-submit").click()
    page.wait_for_url(lambda url: "model=i" in url)
    page.wait_for_selector("[data-testid=layer]")
    page.get_by_test_id("draw-canvas").scroll_into_view_if_needed()  # a grey model gets the drawing pad
    draw(page, ONE)
    conv = page.get_by_test_id("layer").nth(0)
    more = conv.get_by_test_id("more-maps")
    more.wait_for()
    assert more.inner_text() == "Show 16 more maps (16 of 40 shown)"
    visible = "(layer) => [...layer.querySelectorAll('[data-testid=activation-map]')].filter((c) => !c.hidden).length"
    assert conv.evaluate(visible) == 16
    more.click()
    assert conv.evaluate(visible) == 32 and more.inner_text() == "Show 8 more maps (32 of 40 shown)"
    maps = conv.get_by_test_id("activation-map")
    maps.nth(31).focus()
    page.keyboard.press("PageDown")  # walking on past the page opens the rest
    assert conv.evaluate(visible) == 40 and more.is_hidden()
    box = maps.nth(0).bounding_box()
    assert box is not None and box["width"] <= 100  # a 120x120 map drawn scaled down
    page.screenshot(path=RESULTS / "import-many-maps-1280x720.png", full_page=True)
    page.console_errors.check()


def test_independent_probabilities_are_said_not_to_add_up(student, server_url, tmp_path):
    page = student
    open_digits_page(page, server_url)
    answer = page.request.post(
        f"{server_url}/api/models/import",
        multipart={
            "file": {
                "name": "tags.onnx",
                "mimeType": "application/octet-stream",
                "buffer": COLLECTION["multilabel_sigmoid"](),
            }
        },
    )
    assert answer.status == 201 and answer.json()["outputs"] == "independent"
    page.goto(f"{server_url}/?model={answer.json()['id']}")
    page.get_by_test_id("sample-photo").first.click()
    note = page.get_by_test_id("independent-note")
    note.wait_for()
    assert "need not add up to 100%" in note.inner_text()
    page.console_errors.check()


def test_on_a_phone_the_import_form_and_the_downloads_fit_the_screen(page_at, server_url):
    page = page_at(390, 844, touch=True)
    open_digits_page(page, server_url)
    page.get_by_test_id("import-model").locator("summary").click()
    for testid in (
        "import-file",
        "import-labels",
        "import-preprocess",
        "import-submit",
        "export-onnx",
        "export-pytorch",
    ):
        box = page.get_by_test_id(testid).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, testid
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    page.get_by_test_id("import-model").scroll_into_view_if_needed()
    page.screenshot(path=RESULTS / "import-form-390x844.png")
    page.console_errors.check()
