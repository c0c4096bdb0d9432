"""Why did it say 1? The heat map, the frame editor and fooling the network, in real Chromium."""

import pytest

from tests.browser.drawing import ONE, count_pixels, draw, open_digits_page, wait_for_guess

pytestmark = pytest.mark.browser


@pytest.fixture
def drawn_one(page, server_url):
    """A 1 drawn on the drawing page, opened with the method in its URL."""
    page = open_digits_page(page, server_url, "?method=saliency")
    draw(page, ONE)
    wait_for_guess(page, 1)
    return page


def test_the_heat_map_appears_for_a_drawn_digit_and_follows_the_method(drawn_one):
    page = drawn_one
    page.wait_for_function("() => document.querySelector('[data-testid=heatmap]').dataset.target === '1'")
    # white is zero on the diverging scale: a map of a real gradient has coloured pixels
    assert count_pixels(page, "[data-testid=heatmap]", "Math.abs(r - b) > 40") > 10
    assert "gradient" in page.get_by_test_id("explain-words").text_content()
    page.get_by_test_id("explain-method").select_option("gradcam")
    page.wait_for_selector("[data-testid=gradcam-maps] canvas")
    assert page.locator("[data-testid=gradcam-maps] figure").count() == 2  # conv1 and conv2
    assert "method=gradcam" in page.url
    page.get_by_test_id("explain-method").select_option("integrated_gradients")
    page.wait_for_selector("[data-testid=explain-check]:has-text('add up to')")
    page.console_errors.check()


def test_painting_a_bar_on_the_frame_editor_turns_the_1_into_something_else(drawn_one):
    page = drawn_one
    editor = page.get_by_test_id("frame-editor")
    editor.scroll_into_view_if_needed()
    box = editor.bounding_box()
    page.mouse.move(box["x"] + 0.3 * box["width"], box["y"] + 0.2 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.62 * box["width"], box["y"] + 0.2 * box["height"], steps=12)
    page.mouse.up()
    page.wait_for_function("() => document.querySelector('[data-testid=prediction]').textContent.trim() !== '1'")
    # the input the network saw now holds the painted bar, and going back restores the 1
    page.get_by_test_id("frame-reset").click()
    wait_for_guess(page, 1)
    page.console_errors.check()


def test_fooling_the_network_at_a_large_epsilon_changes_its_guess(drawn_one):
    page = drawn_one
    page.get_by_test_id("epsilon").fill("0.4")
    page.get_by_test_id("fool-run").click()
    guess = page.get_by_test_id("adversarial-guess")
    guess.locator("text=Fooled").wait_for()
    assert guess.get_attribute("data-flipped") == "true"
    assert count_pixels(page, "[data-testid=perturbation]", "Math.abs(r - b) > 40") > 20
    assert count_pixels(page, "[data-testid=adversarial-image]", "r > 0") > 0
    assert page.get_by_test_id("layer-change").count() == 7
    # the last layer is "output" as everywhere on the page, and the percentages say what they are
    assert page.get_by_test_id("layer-change").last.text_content().startswith("output: ")
    assert "as a share of the output's own size" in page.get_by_test_id("layer-change-words").text_content()
    assert "epsilon=0.4" in page.url
    page.get_by_test_id("fool-target").select_option("3")
    assert "target=3" in page.url
    page.console_errors.check()


def test_the_heat_map_lies_over_the_digit_and_its_caption_names_the_class_and_layer(drawn_one):
    page = drawn_one
    page.wait_for_function("() => document.querySelector('[data-testid=heatmap]').dataset.target === '1'")
    assert "for the class “1”" in page.get_by_test_id("heat-caption").inner_text()
    # with the heat turned off, the heat map shows the digit itself: white strokes on black
    page.get_by_test_id("heat-opacity").fill("0")
    gray = count_pixels(page, "[data-testid=heatmap]", "r === g && g === b && r > 200")
    assert gray > 20 and count_pixels(page, "[data-testid=heatmap]", "Math.abs(r - b) > 40") == 0
    page.get_by_test_id("heat-opacity").fill("100")
    assert count_pixels(page, "[data-testid=heatmap]", "Math.abs(r - b) > 40") > 10
    page.get_by_test_id("explain-method").select_option("gradcam")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=heat-caption]').textContent.startsWith('Grad-CAM of conv2')"
    )
    assert (
        "(its 10×10 maps, stretched over the input) for the class “1”"
        in page.get_by_test_id("heat-caption").inner_text()
    )
    page.get_by_test_id("explain-method").select_option("occlusion")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=heat-caption]').textContent.includes('black patch')"
    )
    assert "the probability of “1” drops" in page.get_by_test_id("heat-caption").inner_text()
    assert (
        page.get_by_test_id("heatmap").evaluate("c => c.width") == 32
    )  # over the input's pixels, not the 14 positions
    page.get_by_test_id("heatmap").scroll_into_view_if_needed()
    page.screenshot(path="test-results/explain-overlay-1280x720.png")
    page.console_errors.check()
