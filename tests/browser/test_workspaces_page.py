"""Two students in two browsers: the model picker groups their own, shared and shipped models, an edit
is named after its change and can be undone, a share link lends a model and a copy makes it one's own,
and the training page says a waiting job's place in line."""

from __future__ import annotations

import pytest

from engine.architectures import ARCHITECTURES
from tests.browser.conftest import RESULTS, watch_console
from tests.browser.drawing import ONE, draw, open_digits_page, wait_for_guess

pytestmark = pytest.mark.browser


@pytest.fixture
def two_students(browser):
    contexts = [browser.new_context(viewport={"width": 1280, "height": 720}) for _ in range(2)]
    yield [watch_console(context.new_page()) for context in contexts]
    for context in contexts:
        context.close()


def picker_groups(page) -> dict[str, list[str]]:
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('[data-testid=model-picker] optgroup')]
            .map((g) => [g.label, [...g.querySelectorAll('option')].map((o) => o.textContent)]))"""
    )


def test_a_shared_edit_is_lent_copied_and_undone_across_two_browsers(two_students, server_url):
    owner, friend = two_students
    open_digits_page(owner, server_url)  # the first visit gives the owner a workspace cookie
    edit = owner.request.post(
        f"{server_url}/api/models/lenet/edit", data={"edits": [{"op": "zero", "layer": "conv1", "unit": 3}]}
    )
    assert edit.status == 201
    edited = edit.json()["id"]

    open_digits_page(owner, server_url, f"?model={edited}")
    groups = picker_groups(owner)
    assert list(groups) == ["Yours", "Shipped"]
    assert groups["Yours"][0].startswith("LeNet, conv1 filter 3 switched off")
    undo = owner.get_by_test_id("undo-edit")
    assert undo.is_visible() and undo.get_attribute("href") == "/?model=lenet"
    owner.get_by_test_id("share-model").click()
    link = owner.get_by_test_id("share-result").locator("a")
    link.wait_for()
    url = link.get_attribute("href")
    assert "/?model=s" in url
    owner.screenshot(path=RESULTS / "workspace-owner-shares.png")

    friend.goto(url)
    friend.wait_for_selector("[data-testid=layer]")
    draw(friend, ONE)
    wait_for_guess(friend, 1)
    assert list(picker_groups(friend)) == ["Shared with you", "Shipped"]
    assert friend.get_by_test_id("share-model").is_hidden() and friend.get_by_test_id("copy-model").is_visible()
    friend.screenshot(path=RESULTS / "workspace-friend-shared.png")
    friend.get_by_test_id("copy-model").click()
    friend.wait_for_url(lambda u: "model=c" in u)
    friend.wait_for_selector("[data-testid=layer]")
    groups = picker_groups(friend)
    assert groups["Yours"][0].startswith("LeNet, conv1 filter 3 switched off (copy)")

    owner.get_by_test_id("undo-edit").click()
    owner.wait_for_url(lambda u: u.endswith("/?model=lenet"))
    owner.wait_for_selector("[data-testid=layer]")
    owner.console_errors.check()
    friend.console_errors.check()


def test_a_waiting_job_says_its_place_in_line_and_its_wait(two_students, server_url):
    first, second = two_students
    first.goto(server_url + "/train")
    first.wait_for_selector("[data-testid=shape-row]")
    # a long job holds the training worker; the second student's job waits behind it
    long = {"architecture": ARCHITECTURES["tiny"], "epochs": 20}
    running = first.request.post(f"{server_url}/api/models", data=long).json()
    second.goto(server_url + "/train")
    second.wait_for_selector("[data-testid=shape-row]")
    waiting = second.request.post(f"{server_url}/api/models", data={**long, "epochs": 1}).json()
    assert waiting["position"] >= 1
    second.goto(f"{server_url}/train?model={waiting['id']}")
    status = second.get_by_test_id("status")
    second.wait_for_function(
        "() => /in line, about \\d+ (s|min)/.test(document.querySelector('[data-testid=status]').textContent)"
    )
    assert "in line" in status.text_content()
    second.screenshot(path=RESULTS / "train-queued-in-line.png")
    second.request.post(f"{server_url}/api/models/{waiting['id']}/cancel")
    first.request.post(f"{server_url}/api/models/{running['id']}/cancel")
