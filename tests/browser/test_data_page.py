"""Your own data in the browser: name three classes, draw five examples of each on the pad (strokes with
small random variations), fine-tune the digit network on them from the training page with its filters
kept, compare it with a from-scratch twin, and read new drawings on the drawing page by their names."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.browser.conftest import RESULTS, watch_console
from tests.browser.drawing import draw

pytestmark = pytest.mark.browser

SHAPES = {
    "check": [[(0.2, 0.55), (0.42, 0.8), (0.82, 0.2)]],
    "cross": [[(0.22, 0.2), (0.78, 0.8)], [(0.78, 0.2), (0.22, 0.8)]],
    "circle": [[(0.5 + 0.32 * np.cos(t), 0.5 + 0.32 * np.sin(t)) for t in np.linspace(0, 2 * np.pi, 24)]],
}


NAMES = str(list(SHAPES))


def varied(strokes, rng):
    """The strokes moved, scaled and jittered a little: no two examples alike."""
    scale, dx, dy = rng.uniform(0.8, 1.1), *rng.uniform(-0.06, 0.06, 2)
    return [
        [
            (0.5 + (x - 0.5) * scale + dx + rng.normal(0, 0.015), 0.5 + (y - 0.5) * scale + dy + rng.normal(0, 0.015))
            for x, y in s
        ]
        for s in strokes
    ]


@pytest.fixture
def learner(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    yield watch_console(context.new_page())
    context.close()


def test_draw_a_data_set_fine_tune_lenet_and_read_new_drawings(learner, server_url):
    page = learner
    rng = np.random.default_rng(7)
    page.goto(f"{server_url}/data")
    page.get_by_test_id("dataset-name").fill("symbols")
    for name in SHAPES:
        page.get_by_test_id("class-name-input").fill(name)
        page.get_by_test_id("add-class").click()
    page.get_by_test_id("create-dataset").click()
    page.wait_for_url(lambda url: "dataset=" in url)
    tabs = page.get_by_test_id("class-tab")
    tabs.first.wait_for()
    assert tabs.count() == 3
    for k, strokes in enumerate(SHAPES.values()):
        tabs.nth(k).click()
        for n in range(5):
            draw(page, varied(strokes, rng), canvas="example-pad")
            page.get_by_test_id("add-example").click()
            page.wait_for_function(
                "(n) => document.querySelectorAll('[data-testid=example-thumb]').length === n", arg=n + 1
            )
        assert page.get_by_test_id("example-count").nth(k).inner_text() == "5"
    summary = page.get_by_test_id("dataset-summary").inner_text()
    assert "15 examples (12 to train, 3 held out to test)" in summary and "ready to train" in summary
    # a bad example goes: delete one, and the class says it needs one more
    page.get_by_test_id("delete-example").first.click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=dataset-summary]').textContent.includes('1 more circle')"
    )
    draw(page, varied(SHAPES["circle"], rng), canvas="example-pad")
    page.get_by_test_id("add-example").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=dataset-summary]').textContent.includes('ready to train')"
    )
    page.screenshot(path=RESULTS / "data-page-1280x720.png", full_page=True)

    page.get_by_test_id("train-link").click()
    page.wait_for_url(lambda url: "/train" in url)
    page.wait_for_selector("[data-testid=start-from]:checked")  # the data page sent it to start from LeNet
    page.wait_for_selector("[data-testid=freeze-layer]")  # named by the API's check of LeNet's design
    assert [b.get_attribute("value") for b in page.get_by_test_id("freeze-layer").all() if b.is_checked()] == [
        "conv1",
        "conv2",
    ]
    assert page.locator("[data-testid=layer-list] li.locked").count() == 2
    page.get_by_test_id("epochs").fill("10")
    page.get_by_test_id("batch-size").fill("8")
    page.get_by_test_id("model-name").fill("symbols from LeNet")
    page.wait_for_selector("[data-testid=train-button]:not([disabled])")
    page.get_by_test_id("train-button").click()
    page.wait_for_selector("[data-testid=confusion-cell]", timeout=90_000)
    card = page.get_by_test_id("model-card")
    card.wait_for()
    assert "fine-tuned from lenet, conv1, conv2 frozen" in card.inner_text()
    assert card.locator("tbody tr").count() == 3
    runs = page.get_by_test_id("comparison-run")
    runs.nth(1).wait_for(timeout=90_000)
    accuracies = [runs.nth(k).get_by_test_id("comparison-accuracy").inner_text() for k in range(2)]
    assert all(a.endswith("%") for a in accuracies)
    page.get_by_test_id("comparison").scroll_into_view_if_needed()
    page.screenshot(path=RESULTS / "data-comparison-1280x720.png")
    page.console_errors.check()

    model = page.url.split("model=")[1].split("&")[0]
    page.goto(f"{server_url}/?model={model}")
    page.wait_for_selector("[data-testid=layer]")
    assert page.get_by_test_id("page-title").inner_text() == "Draw a check, cross or circle, watch the network read it"
    assert "symbols" in page.get_by_test_id("model-card").inner_text()
    right = 0
    for name, strokes in SHAPES.items():
        page.get_by_test_id("clear").click()
        page.get_by_test_id("draw-canvas").scroll_into_view_if_needed()
        draw(page, varied(strokes, rng))
        guess = page.get_by_test_id("prediction")
        page.wait_for_function(
            f"() => {NAMES}.includes(document.querySelector('[data-testid=prediction]').textContent.trim())"
        )
        page.wait_for_timeout(400)  # the last stroke's guess
        right += guess.inner_text().strip() == name
    assert right >= 2
    page.console_errors.check()


def test_on_a_phone_the_pad_the_tabs_and_the_camera_fit_and_a_finger_draws(page_at, server_url):
    page = page_at(390, 844, touch=True)
    page.goto(f"{server_url}/data")  # the workspace cookie first
    made = page.request.post(f"{server_url}/api/datasets", data={"name": "shapes", "classes": list(SHAPES)}).json()
    page.goto(f"{server_url}/data?dataset={made['id']}")
    page.get_by_test_id("class-tab").first.wait_for()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    pad = page.get_by_test_id("example-pad")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["width"] >= 250
    assert page.get_by_test_id("example-camera").get_attribute("capture") == "environment"
    # a finger's stroke: touch pointer events, as a tablet sends them
    page.evaluate(
        """() => {
            const pad = document.querySelector('[data-testid=example-pad]');
            const r = pad.getBoundingClientRect();
            const at = (type, f) => pad.dispatchEvent(new PointerEvent(type, {pointerType: 'touch', pointerId: 7,
                bubbles: true, button: 0, clientX: r.left + r.width * f, clientY: r.top + r.height * f}));
            at('pointerdown', 0.2); for (let f = 0.25; f < 0.8; f += 0.05) at('pointermove', f); at('pointerup', 0.8);
        }"""
    )
    page.get_by_test_id("add-example").click()
    page.get_by_test_id("example-thumb").first.wait_for()
    assert page.get_by_test_id("example-count").first.inner_text() == "1"
    page.screenshot(path=RESULTS / "data-page-390x844.png", full_page=True)
    page.console_errors.check()


def test_a_deleted_example_can_be_brought_back_and_the_delete_button_never_covers_the_picture(page_at, server_url):
    page = page_at(1280, 720)
    page.goto(f"{server_url}/")
    made = page.request.post(f"{server_url}/api/datasets", data={"name": "undo", "classes": ["check", "cross"]}).json()
    rng = np.random.default_rng(1)
    pictures = [[[int(v) for v in row] for row in (rng.random((28, 28)) > 0.7) * 255] for _ in range(4)]
    examples = [{"label": "check", "pixels": p} for p in pictures]
    assert page.request.post(f"{server_url}/api/datasets/{made['id']}/images", data={"examples": examples}).ok
    page.goto(f"{server_url}/data?dataset={made['id']}")
    thumbs = page.get_by_test_id("example-thumb")
    thumbs.nth(3).wait_for()
    picture, button = (
        thumbs.first.locator("img").bounding_box(),
        thumbs.first.get_by_test_id("delete-example").bounding_box(),
    )
    assert button["y"] >= picture["y"] + picture["height"]  # under the thumbnail, not over it
    assert button["width"] >= 24 and button["height"] >= 24  # and still a target a finger can hit
    first = thumbs.first.locator("img").get_attribute("src")
    thumbs.first.get_by_test_id("delete-example").click()
    page.wait_for_function("() => document.querySelectorAll('[data-testid=example-thumb]').length === 3")
    page.get_by_test_id("undo-delete").click()
    page.wait_for_function("() => document.querySelectorAll('[data-testid=example-thumb]').length === 4")
    assert thumbs.first.locator("img").get_attribute("src") == first  # back in its place
    thumbs.nth(1).get_by_test_id("delete-example").click()  # this time it is not undone
    deadline = time.monotonic() + 20
    while page.request.get(f"{server_url}/api/datasets/{made['id']}").json()["examples"].__len__() != 3:
        assert time.monotonic() < deadline, "the deletion never reached the server"
        time.sleep(0.3)
    page.console_errors.check()
