"""The playground's live camera in real Chromium's fake camera: filtered frames, a frozen frame sent to the
server, and a refused camera said in words."""

import pytest

from tests.browser.conftest import RESULTS

pytestmark = pytest.mark.browser


def test_the_fake_camera_is_filtered_live_and_a_frozen_frame_goes_to_the_server(browser, server_url):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, permissions=["camera"])
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server_url + "/playground?preset=edge_detection")
    page.wait_for_selector("[data-testid=output-image][src]")
    page.get_by_test_id("camera").click()
    page.wait_for_function("() => Number(document.querySelector('[data-testid=camera-output]').dataset.fps) > 0")
    fps = float(page.get_by_test_id("camera-output").get_attribute("data-fps"))
    # the frames are the camera's through the kernel: an edge detector leaves most of the picture dark
    dark = page.evaluate(
        """() => { const c = document.querySelector('[data-testid=camera-output]');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let k = 0; k < d.length; k += 4) if (d[k] < 40) n++; return n / (d.length / 4); }"""
    )
    assert dark > 0.5 and fps > 0
    width = page.evaluate("() => document.querySelector('[data-testid=camera-output]').width")
    page.get_by_test_id("freeze").click()
    # the frozen frame is now the playground's picture, filtered by the server like any upload
    page.wait_for_function(
        "(w) => document.querySelector('#input-caption').textContent.startsWith(`Input ${w} ×`)", arg=width
    )
    page.wait_for_selector("[data-testid=output-image][aria-busy=false]")
    RESULTS.mkdir(exist_ok=True)
    page.screenshot(path=RESULTS / "playground-camera.png", full_page=True)
    assert errors == []
    context.close()


def test_a_refused_camera_is_said_in_words(browser, server_url):
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # no camera permission
    page = context.new_page()
    page.goto(server_url + "/playground")
    page.get_by_test_id("camera").click()
    message = page.get_by_test_id("camera-error")
    message.wait_for()
    assert "camera" in message.text_content().lower() and "allow" in message.text_content()
    context.close()
