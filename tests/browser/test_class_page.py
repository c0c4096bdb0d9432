"""A class in three browsers: a lecturer creates it and puts the code on the projector, two students join
with the code, one trains the tiny network and shares it while the lecturer watches it live and opens it,
the lecturer sets a challenge, both students enter, the leaderboard ranks them, and an entry over the
budget is refused with its parameter count."""

from __future__ import annotations

import time

import pytest

from engine.architectures import ARCHITECTURES
from tests.browser.conftest import RESULTS, watch_console

pytestmark = pytest.mark.browser

WIDER = {  # 23,466 parameters: over a 10,000 budget, and still quick to train
    **ARCHITECTURES["tiny"],
    "layers": [
        {"type": "conv", "filters": 16, "kernel_size": 5},
        {"type": "relu"},
        {"type": "maxpool", "kernel_size": 2},
        {"type": "flatten"},
        {"type": "linear", "units": 10},
    ],
}


@pytest.fixture
def room(browser):
    contexts = [browser.new_context(viewport={"width": 1280, "height": 720}) for _ in range(3)]
    yield [watch_console(context.new_page()) for context in contexts]
    for context in contexts:
        context.close()


def wait_done(page, server_url, job_id):
    for _ in range(240):
        if page.request.get(f"{server_url}/api/models/{job_id}").json()["status"] == "done":
            return
        time.sleep(0.5)
    raise AssertionError(f"{job_id} did not finish")


def train_by_api(page, server_url, architecture, **settings) -> str:
    job = page.request.post(f"{server_url}/api/models", data={"architecture": architecture, **settings}).json()
    wait_done(page, server_url, job["id"])
    return job["id"]


def join(page, server_url, code, name):
    page.goto(f"{server_url}/class")
    page.get_by_test_id("join-code").fill(code.lower())  # typed as a student would
    page.get_by_test_id("join-name").fill(name)
    page.get_by_test_id("join-button").click()
    page.wait_for_url(lambda url: "class=" in url)
    page.get_by_test_id("you-are").wait_for()


def enter(page, class_url, model_name):
    page.goto(class_url)
    page.get_by_test_id("entry-form").wait_for()
    page.locator("[data-testid=entry-model] option", has_text=model_name).wait_for(state="attached")
    page.get_by_test_id("entry-model").select_option(label=model_name)
    page.get_by_test_id("enter-button").click()


def test_a_lecturer_and_two_students_run_a_class_and_a_challenge(room, server_url):
    lecturer, ada, bea = room
    lecturer.goto(f"{server_url}/class")
    lecturer.get_by_test_id("class-name").fill("MC886 lecture 7")
    lecturer.get_by_test_id("create-class").click()
    lecturer.wait_for_url(lambda url: "class=" in url)
    lecturer.wait_for_function("() => document.querySelector('[data-testid=class-code]').textContent.length === 6")
    code = lecturer.get_by_test_id("class-code").inner_text()
    assert len(code) == 6 and not set(code) & set("0O1I")
    assert lecturer.get_by_test_id("class-code").evaluate("e => parseFloat(getComputedStyle(e).fontSize)") >= 48
    # the QR code is a picture the page asks for once the class is made: polled until it has loaded
    qr = "document.querySelector('[data-testid=class-qr]')"
    lecturer.wait_for_function(f"() => {qr}.complete && {qr}.naturalWidth > 100")
    lecturer.evaluate(
        """() => {
            window.seen = new Set();
            const note = () =>
                document.querySelectorAll('[data-testid=member-job]').forEach((j) => window.seen.add(j.dataset.status));
            new MutationObserver(note).observe(document.body, {subtree: true, childList: true});
        }"""
    )

    join(ada, server_url, code, "Ada")
    join(bea, server_url, code, "Bea")
    lecturer.wait_for_function("() => document.querySelectorAll('[data-testid=member-row]').length === 3")

    # Ada trains the tiny network on the training page; the lecturer's table follows it live
    ada.goto(f"{server_url}/train")
    ada.click("[data-preset=tiny]")
    ada.get_by_test_id("epochs").fill("3")
    ada.get_by_test_id("model-name").fill("ada tiny")
    ada.wait_for_selector("[data-testid=train-button]:not([disabled])")
    ada.get_by_test_id("train-button").click()
    lecturer.wait_for_function("() => window.seen.has('running')", timeout=60_000)
    lecturer.screenshot(path=RESULTS / "class-lecturer-live-1280x720.png")
    lecturer.wait_for_function("() => window.seen.has('done')", timeout=90_000)
    ada.wait_for_selector("[data-testid=confusion-cell]", timeout=60_000)
    ada_model = ada.url.split("model=")[1].split("&")[0]
    ada.goto(f"{server_url}/?model={ada_model}")
    ada.get_by_test_id("share-model").click()
    ada.get_by_test_id("share-result").locator("a").wait_for()

    # the lecturer opens Ada's model from the table, on the drawing page (for the projector)
    with lecturer.expect_navigation():
        lecturer.locator("[data-testid=member-job] a", has_text="draw").first.click()
    lecturer.wait_for_selector("[data-testid=layer]")
    assert ada_model in lecturer.url
    lecturer.go_back()
    lecturer.get_by_test_id("challenge-form").wait_for()

    # a design for everyone to start from: it appears among the students' training presets
    lecturer.get_by_test_id("publish-design").select_option("tinyvgg")
    lecturer.get_by_test_id("publish-design-button").click()
    lecturer.wait_for_function(
        "() => document.querySelector('[data-testid=publish-result]').textContent.includes('tinyvgg')"
    )
    bea.goto(f"{server_url}/train")
    preset = bea.get_by_test_id("lecturer-preset")
    preset.wait_for()
    assert preset.inner_text() == "From your lecturer: tinyvgg"
    preset.click()
    bea.wait_for_function("() => document.querySelectorAll('[data-testid=layer-row]').length > 5")

    lecturer.get_by_test_id("challenge-parameters").fill("10000")
    lecturer.get_by_test_id("challenge-epochs").fill("3")
    lecturer.get_by_test_id("challenge-set").click()
    lecturer.wait_for_function(
        "() => document.querySelector('[data-testid=challenge-text]').textContent.includes('10,000')"
    )

    train_by_api(bea, server_url, ARCHITECTURES["tiny"], epochs=1, train_size=600, name="bea tiny")
    class_url = lecturer.url
    enter(ada, class_url, "ada tiny (1,554 parameters)")
    ada.wait_for_function(
        "() => document.querySelector('[data-testid=entry-result]').textContent.startsWith('Entered')"
    )
    enter(bea, class_url, "bea tiny (1,554 parameters)")
    bea.wait_for_function(
        "() => document.querySelector('[data-testid=entry-result]').textContent.startsWith('Entered')"
    )

    rows = bea.get_by_test_id("leaderboard-row")
    bea.wait_for_function("() => document.querySelectorAll('[data-testid=leaderboard-row]').length === 2")
    scores = [float(rows.nth(k).locator("td").nth(2).inner_text().rstrip("%")) for k in range(2)]
    assert scores == sorted(scores, reverse=True)
    assert rows.nth(0).locator("td").nth(1).inner_text() == "Ada"  # 3 epochs on every picture beat 1 on 600
    assert "conv 4@5x5 → maxpool → fc 10" in rows.nth(0).inner_text()

    train_by_api(bea, server_url, WIDER, epochs=1, train_size=600, name="bea wide")
    enter(bea, class_url, "bea wide (23,466 parameters)")
    error = bea.get_by_test_id("challenge-error")
    error.wait_for()
    assert "23,466 parameters, over the challenge's budget of 10,000" in error.inner_text()
    bea.screenshot(path=RESULTS / "class-student-1280x720.png")
    lecturer.reload()
    lecturer.get_by_test_id("leaderboard-row").first.wait_for()
    lecturer.screenshot(path=RESULTS / "class-lecturer-1280x720.png", full_page=True)
    for page in room:
        page.console_errors.check(allowed=("422",))
