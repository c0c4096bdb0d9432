"""The filter playground in real Chromium: upload, presets, a typed kernel, padding modes, URL state."""

import io

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.browser

OUTPUT_DIGEST = """() => {
    const img = document.querySelector('[data-testid=output-image]');
    if (!img.complete || !img.naturalWidth) return null;
    const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
    const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let s = 0; for (let k = 0; k < d.length; k += 4) s = (s * 31 + d[k] + 7 * d[k + 1] + 13 * d[k + 2]) % 1000000007;
    return [c.width, c.height, s, img.src];
}"""


def make_png(tmp_path):
    y, x = np.mgrid[0:48, 0:64]
    rgb = np.stack([x * 4, y * 5, 255 - x * 3], axis=-1).astype(np.uint8)
    rgb[12:36, 20:44] = [250, 240, 30]
    path = tmp_path / "squares.png"
    Image.fromarray(rgb).save(path)
    return path


def output_after(page, previous_src=None):
    """Waits until the newest request's output is drawn (aria-busy false) and differs from ``previous_src``."""
    page.wait_for_function(
        "prev => { const i = document.querySelector('[data-testid=output-image]');"
        " return i.getAttribute('aria-busy') === 'false' && i.complete && i.naturalWidth > 0 && i.src !== prev; }",
        arg=previous_src,
        timeout=10_000,
    )
    return page.evaluate(OUTPUT_DIGEST)


@pytest.fixture
def playground(page, server_url, tmp_path):
    page.goto(server_url + "/playground")
    output_after(page)  # the sample photo is filtered before any upload
    page.get_by_test_id("upload").set_input_files(make_png(tmp_path))
    page.wait_for_function("() => document.querySelector('#input-caption').textContent.includes('64 × 48')")
    return page


def test_presets_and_a_typed_kernel_each_give_a_different_output(playground):
    page = playground
    seen = []
    current = output_after(page)
    for preset in ("edge_detection", "box_blur"):
        page.get_by_test_id("preset").select_option(preset)
        current = output_after(page, current[3])
        seen.append(current)
        assert current[:2] == [64, 48]
    cells = page.get_by_test_id("kernel-cell")
    assert cells.count() == 9
    for i, value in enumerate([0, 0, 0, 0, 0, 1, 0, 0, 0]):  # shift left by one pixel
        cells.nth(i).fill(str(value))
    page.get_by_test_id("kernel-scale").fill("1")
    current = output_after(page, current[3])
    seen.append(current)
    assert len({digest[2] for digest in seen}) == 3
    assert "kernel=" in page.url and "preset=" not in page.url
    page.console_errors.check()


def test_padding_modes_switch_and_are_compared_at_the_border(playground):
    page = playground
    page.get_by_test_id("preset").select_option("box_blur")
    current = output_after(page)
    digests = {}
    for mode in ("zeros", "reflect", "replicate", "circular", "partial"):
        page.get_by_test_id("padding-mode").select_option(mode)
        if mode != "zeros":
            current = output_after(page, current[3])
        digests[mode] = current[2]
        assert f"padding_mode={mode}" in page.url
    assert len(set(digests.values())) == 5
    page.wait_for_function("() => document.querySelectorAll('[data-testid=border-crop] canvas').length === 5")
    page.console_errors.check()


def test_the_border_comparison_shows_partial_padding_over_brightening_a_gaussian(playground):
    page = playground
    page.get_by_test_id("preset").select_option("gaussian_blur_5x5")
    page.get_by_test_id("grayscale").check()
    output_after(page)
    # the comparison made with this kernel, not the one before it
    page.wait_for_selector("[data-testid=border-crops][aria-busy=false]")
    corner = {
        figure.get_attribute("data-mode"): int(figure.locator("figcaption").text_content().split("corner ")[1])
        for figure in page.get_by_test_id("border-crop").all()
    }
    # a 5x5 kernel pads 2: the crop is 8 px, so the 2 px strip that differs is a quarter of it
    assert page.locator("[data-testid=border-crop] canvas").first.evaluate("c => c.width") == 8
    assert corner["zeros"] < corner["replicate"] < corner["partial"]  # 9/25 of the weight re-weighted to 1
    assert "over-brightens" in page.locator("#borders-heading + .hint").text_content()


def test_a_small_picture_is_shown_with_crisp_pixels(playground, tmp_path):
    page = playground
    small = tmp_path / "small.png"
    Image.fromarray((np.arange(64).reshape(8, 8) * 4).astype(np.uint8)).save(small)
    page.get_by_test_id("upload").set_input_files(small)
    page.wait_for_function("() => document.querySelector('[data-testid=output-image]').naturalWidth === 8")
    page.wait_for_function("() => document.querySelector('[data-testid=output-image]').classList.contains('magnified')")
    assert page.get_by_test_id("input-image").evaluate("i => getComputedStyle(i).imageRendering") == "pixelated"


def test_hovering_the_output_works_out_the_sum(playground):
    page = playground
    page.get_by_test_id("preset").select_option("identity")
    output_after(page)
    page.get_by_test_id("output-image").hover(position={"x": 3, "y": 3})
    detail = page.get_by_test_id("pixel-detail")
    detail.locator(".dot-product").first.wait_for()
    assert "Output pixel (row 0, column 0)" in detail.text_content()
    assert "(server:" not in detail.text_content()  # the page's sum agrees with the server's pixel
    assert detail.locator("table.products").first.locator("td.padded").count() == 5  # a corner: 5 of 9 taps padded


OUTPUT_MEAN = """() => {
    const img = document.querySelector('[data-testid=output-image]');
    const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
    const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let s = 0; for (let k = 0; k < d.length; k += 4) s += d[k] + d[k + 1] + d[k + 2];
    return s / (3 * d.length / 4);
}"""


def worked_sum(page, x, y):
    """Hovers output pixel (x, y) of the photo and returns the red channel's caption and its numbers."""
    page.get_by_test_id("output-image").hover(position={"x": x, "y": y})
    caption = page.get_by_test_id("pixel-detail").locator(".dot-product").first
    caption.wait_for()
    text = caption.text_content()
    terms = text.split("(", 1)[1].split(")", 1)[0] if "× (" in text else text.split(": ", 1)[1].split(" = ")[0]
    products = [float(a) * float(b) for a, b in (term.split("×") for term in terms.split(" + "))]
    return text, products, float(caption.get_attribute("data-weighted")), int(caption.get_attribute("data-result"))


@pytest.mark.parametrize(("preset", "scale", "divisor"), [("box_blur", "1/9", 9), ("gaussian_blur_5x5", "1/256", 256)])
def test_the_printed_terms_add_up_to_the_printed_result(playground, preset, scale, divisor):
    page = playground
    page.get_by_test_id("preset").select_option(preset)
    output_after(page)
    text, products, weighted, result = worked_sum(page, 40, 30)
    assert text.startswith(f"R: {scale} × (")  # integer weights, the scale in front: nothing rounded away
    assert sum(products) == weighted and weighted == int(weighted)
    assert f"= {scale} × {int(weighted)} = " in text
    assert result == round(weighted / divisor)
    assert "(server:" not in page.get_by_test_id("pixel-detail").text_content()


def test_edge_detection_shows_absolute_values_by_default_and_clip_is_darker(playground):
    page = playground
    page.get_by_test_id("preset").select_option("edge_detection")
    current = output_after(page)
    assert page.get_by_test_id("output-mapping").input_value() == "stretch"
    absolute = page.evaluate(OUTPUT_MEAN)
    text, *_ = worked_sum(page, 40, 30)
    assert "|" in text and "(server:" not in page.get_by_test_id("pixel-detail").text_content()
    page.get_by_test_id("output-mapping").select_option("clip")
    current = output_after(page, current[3])
    assert "output=clip" in page.url
    clipped = page.evaluate(OUTPUT_MEAN)
    assert absolute > clipped + 3
    page.get_by_test_id("output-mapping").select_option("rescale")
    output_after(page, current[3])
    worked_sum(page, 40, 30)
    assert "(server:" not in page.get_by_test_id("pixel-detail").text_content()
    page.console_errors.check()


def test_the_window_is_outlined_on_the_input_and_the_keyboard_walks_the_output(playground):
    page = playground
    page.get_by_test_id("preset").select_option("gaussian_blur_5x5")
    output_after(page)
    image = page.get_by_test_id("output-image").bounding_box()
    page.get_by_test_id("output-image").hover(position={"x": image["width"] / 2, "y": image["height"] / 2})
    window = page.get_by_test_id("input-window")
    window.wait_for()
    picture = page.get_by_test_id("input-image").bounding_box()
    natural = page.get_by_test_id("input-image").evaluate("i => i.naturalWidth")
    # a 5x5 window is 5 of the picture's pixels wide, wherever the picture is drawn at
    assert window.bounding_box()["width"] == pytest.approx(picture["width"] * 5 / natural, abs=1)
    assert page.get_by_test_id("output-marker").is_visible()
    zoom = page.get_by_test_id("window-zoom")
    assert zoom.evaluate("c => [c.width, c.height]") == [5, 5]
    output = page.get_by_test_id("output-image")
    output.focus()
    for key in ("Home", "ArrowRight", "ArrowDown", "ArrowDown"):
        page.keyboard.press(key)
    assert "Output pixel (row 2, column 1)" in page.get_by_test_id("pixel-detail").text_content()
    left = window.bounding_box()["x"] - picture["x"]
    assert left == pytest.approx(0, abs=1)  # column 1's window starts at column -1: clamped to the edge
    page.keyboard.press("Escape")
    assert window.is_hidden()
    page.console_errors.check()


def test_a_pinned_pixel_holds_against_pointing_and_is_worked_out_again_for_a_new_kernel(playground):
    page = playground
    page.get_by_test_id("preset").select_option("box_blur")
    current = output_after(page)
    output = page.get_by_test_id("output-image")
    box = output.bounding_box()
    output.click(position={"x": box["width"] * 30 / 64, "y": box["height"] * 20 / 48})
    detail = page.get_by_test_id("pixel-detail")
    heading = detail.locator("h3").text_content()
    assert "pinned" in detail.get_attribute("class")
    output.hover(position={"x": 3, "y": 3})
    assert detail.locator("h3").text_content() == heading  # pointing elsewhere leaves the pin
    before = detail.text_content()
    page.get_by_test_id("preset").select_option("sharpen")
    output_after(page, current[3])
    page.wait_for_function("t => document.querySelector('[data-testid=pixel-detail]').textContent !== t", arg=before)
    assert detail.locator("h3").text_content() == heading  # the same pixel, its sum worked out for the new kernel
    page.keyboard.press("Escape")
    assert "pinned" not in detail.get_attribute("class")
    output.focus()
    for key in ("Home", "ArrowRight", "Enter"):  # the keyboard pins too
        page.keyboard.press(key)
    assert "Output pixel (row 0, column 1)" in detail.text_content() and "pinned" in detail.get_attribute("class")
    page.keyboard.press("Enter")  # and lets go
    assert "pinned" not in detail.get_attribute("class")
    page.console_errors.check()


def test_stride_dilation_and_grayscale_change_the_output_size(playground):
    page = playground
    page.get_by_test_id("stride").fill("2")
    page.get_by_test_id("stride").dispatch_event("change")
    current = output_after(page)
    page.wait_for_function("() => document.querySelector('[data-testid=output-image]').naturalWidth === 32")
    words = page.get_by_test_id("output-size").text_content()
    # the lecture's (N − F + 2P)/S + 1 with the picture's numbers, both sizes printed
    assert words.startswith("Input 64 × 48 → output 32 × 24: width (64 − 3 + 2·1)/2 + 1 = 32.5 → 32, height")
    assert "(48 − 3 + 2·1)/2 + 1 = 24.5 → 24" in words
    page.get_by_test_id("kernel-size").select_option("2")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=output-size]').textContent.includes('no centre')"
    )
    assert "padding 0: a 2×2 kernel has no centre" in page.get_by_test_id("output-size").text_content()
    page.get_by_test_id("grayscale").check()
    output_after(page, current[3])
    assert "grayscale=true" in page.url


def test_a_link_restores_the_state(page, server_url):
    page.goto(server_url + "/playground?preset=sharpen&padding_mode=reflect&stride=2&dilation=1&grayscale=true")
    output_after(page)
    assert page.get_by_test_id("preset").input_value() == "sharpen"
    assert page.get_by_test_id("padding-mode").input_value() == "reflect"
    assert page.get_by_test_id("stride").input_value() == "2"
    assert page.get_by_test_id("grayscale").is_checked()
    assert page.get_by_test_id("output-mapping").input_value() == "clip"  # sharpen's own mapping
    page.goto(server_url + "/playground?preset=outline&output=rescale")
    output_after(page)
    assert page.get_by_test_id("output-mapping").input_value() == "rescale"  # the link's, not the preset's
    page.goto(server_url + "/playground?kernel=[[0,0,0],[0,2,0],[0,0,0]]&padding_mode=zeros")
    output_after(page)
    values = [page.get_by_test_id("kernel-cell").nth(i).input_value() for i in range(9)]
    assert values == ["0", "0", "0", "0", "2", "0", "0", "0", "0"]
    page.console_errors.check()


def test_a_bad_upload_says_so_on_the_page(playground, tmp_path):
    page = playground
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"this is not a picture at all")
    page.get_by_test_id("upload").set_input_files(bad)
    error = page.get_by_test_id("error")
    error.wait_for(state="visible")
    assert "not a picture" in error.text_content()
    truncated = tmp_path / "half.png"
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 90).save(buffer, format="PNG")
    truncated.write_bytes(buffer.getvalue()[:60])
    page.get_by_test_id("upload").set_input_files(truncated)
    page.wait_for_function("() => !document.querySelector('[data-testid=error]').hidden")


def test_the_kernel_editor_takes_fractions_names_a_bad_cell_and_fits_a_7x7_grid(playground):
    page = playground
    current = output_after(page)
    cells = page.get_by_test_id("kernel-cell")
    cells.nth(1).fill("1/2")  # a fraction, as the scale takes
    current = output_after(page, current[3])
    assert page.get_by_test_id("error").is_hidden()
    cells.nth(5).fill("abc")
    error = page.get_by_test_id("error")
    error.wait_for()
    assert error.text_content() == 'Row 2, column 3: "abc" is not a number or a fraction such as 1/2.'
    assert cells.nth(5).get_attribute("aria-invalid") == "true"
    cells.nth(5).fill("0")
    page.get_by_test_id("stride").fill("1.5")
    page.get_by_test_id("stride").dispatch_event("change")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=error]').textContent.includes('whole numbers from 1 to 8')"
    )
    assert "Input should be" not in error.text_content()  # the page's words, not the server's raw message
    page.get_by_test_id("stride").fill("1")
    page.get_by_test_id("kernel-size").select_option("7")
    assert cells.count() == 49
    panel = page.locator("#kernel-grid").evaluate("g => g.parentElement.getBoundingClientRect().right")
    assert all(
        cells.nth(k).bounding_box()["x"] + cells.nth(k).bounding_box()["width"] <= panel + 1 for k in range(42, 49)
    )


def test_the_laplacian_is_bright_on_a_projector_and_its_caption_says_how(page_at, server_url):
    page = page_at(1280, 720)
    page.goto(server_url + "/playground?preset=edge_detection")
    output_after(page)
    caption = page.get_by_test_id("output-caption")
    page.wait_for_function("() => document.querySelector('[data-testid=output-caption]').textContent.includes('×')")
    assert "|value| ×" in caption.inner_text() and "strongest edges white" in caption.inner_text()
    stretched = page.evaluate(OUTPUT_MEAN)
    before = page.evaluate(OUTPUT_DIGEST)[3]
    page.get_by_test_id("output-mapping").select_option("abs")
    output_after(page, before)
    assert stretched > page.evaluate(OUTPUT_MEAN) * 1.5  # the gain brightens what |value| left dark
    page.console_errors.check()


def test_a_strided_output_is_drawn_at_its_true_scale_and_the_sum_sits_beside_it(page_at, server_url):
    page = page_at(1280, 720)
    page.goto(server_url + "/playground?preset=box_blur&stride=2")
    output_after(page)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=output-caption]').textContent.includes('drawn to scale')"
    )
    assert (
        page.get_by_test_id("output-caption")
        .inner_text()
        .startswith("Output 200 × 133, drawn to scale (the input is 400 × 266)")
    )
    source = page.get_by_test_id("input-image").bounding_box()
    output = page.get_by_test_id("output-image").bounding_box()
    assert output["width"] == pytest.approx(source["width"] / 2, abs=2)  # stride 2: half as wide, half as tall
    page.get_by_test_id("output-image").hover(position={"x": output["width"] / 2, "y": output["height"] / 2})
    detail = page.get_by_test_id("pixel-detail")
    detail.locator(".dot-product").first.wait_for()
    where = detail.bounding_box()
    assert where["x"] >= output["x"] + output["width"] and where["y"] < 720  # beside the pictures, in view
    page.screenshot(path="test-results/playground-stride-1280x720.png")
    page.console_errors.check()


def test_a_noisy_photo_is_not_stretched_into_false_edges_and_the_caption_says_the_bound(page_at, server_url):
    """A flat grey photo with JPEG-like speckle: the Laplacian's stretch stops at x8, and the page says why."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(3)
    noisy = np.clip(128 + rng.normal(0, 2.5, (240, 320, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noisy).save(buffer, format="JPEG", quality=70)
    page = page_at(1280, 720)
    page.goto(server_url + "/playground?preset=edge_detection")
    output_after(page)
    before = page.evaluate(OUTPUT_DIGEST)[3]
    page.get_by_test_id("upload").set_input_files(
        files=[{"name": "phone.jpg", "mimeType": "image/jpeg", "buffer": buffer.getvalue()}]
    )
    output_after(page, before)
    caption = page.get_by_test_id("output-caption").inner_text()
    assert "at most ×8" in caption and "noise" in caption
    assert page.evaluate(OUTPUT_MEAN) < 40  # dark grey speckle, not a white snowstorm
    page.console_errors.check()


def test_emboss_works_out_its_bias_in_the_pixel_sum(page, server_url):
    page.goto(server_url + "/playground?preset=emboss")
    output_after(page)
    assert page.get_by_test_id("kernel-bias").input_value() == "128"
    page.get_by_test_id("output-image").click(position={"x": 40, "y": 40})
    words = page.locator("#pixel-detail .dot-product").first.inner_text()
    assert "+ 128 (bias) = " in words
    page.console_errors.check()
