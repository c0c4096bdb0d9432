"""A class in a real lecture, in three browsers: the projected lecturer page never shows the lecturer's
secret; the lecturer's second device joins through the lecturer link; a student who copies the leader is
refused with the reason on the page; a new round empties the board and the form shows it after a reload;
and with 60 members the counts, the challenge and the leaderboard stay on the projector's first screen."""

from __future__ import annotations

import time

import httpx
import pytest

from engine.architectures import ARCHITECTURES
from tests.browser.conftest import RESULTS, watch_console

pytestmark = pytest.mark.browser

# Every page of the lecturer's browser records whether any secret it holds was ever on screen: in the text,
# or in a field that is shown (checked on every change of the page, and kept across reloads).
SECRET_WATCH = """
(() => {
  const secrets = () => Object.keys(localStorage).filter((k) => k.startsWith("convscope:lecturer-secret:"))
    .map((k) => localStorage.getItem(k)).filter(Boolean);
  const shown = () => {
    const text = [document.body?.innerText ?? ""];
    document.querySelectorAll("input").forEach((i) => { if (i.offsetParent !== null) text.push(i.value); });
    return text.join("\\n");
  };
  const check = () => {
    const on = shown();
    if (secrets().some((s) => on.includes(s))) sessionStorage.setItem("secret-was-shown", location.href);
  };
  const everything = { subtree: true, childList: true, characterData: true, attributes: true };
  new MutationObserver(check).observe(document, everything);
  addEventListener("load", check);
})();
"""


@pytest.fixture
def contexts(browser):
    made = []

    def open_context(width=1280, height=720, touch=False):
        context = browser.new_context(viewport={"width": width, "height": height}, has_touch=touch, is_mobile=touch)
        made.append(context)
        return context

    yield open_context
    for context in made:
        context.close()


def api_student(url: str) -> httpx.Client:
    token = httpx.post(f"{url}/api/workspace", timeout=10).json()["token"]
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def trained_by_api(client: httpx.Client, **settings) -> str:
    job = client.post("/api/models", json={"architecture": ARCHITECTURES["tiny"], "epochs": 1, **settings}).json()
    deadline = time.monotonic() + 120
    while client.get(f"/api/models/{job['id']}").json()["status"] != "done":
        assert time.monotonic() < deadline, f"{job['id']} did not finish"
        time.sleep(0.3)
    return job["id"]


def secret_was_shown(page) -> str | None:
    return page.evaluate("() => sessionStorage.getItem('secret-was-shown')")


def make_class(page, server_url: str, name: str) -> str:
    page.goto(f"{server_url}/class")
    page.get_by_test_id("class-name").fill(name)
    page.get_by_test_id("create-class").click()
    page.wait_for_url(lambda url: "class=" in url)
    page.wait_for_function("() => document.querySelector('[data-testid=class-code]').textContent.length === 6")
    return page.get_by_test_id("class-code").inner_text()


def test_the_secret_stays_off_the_projector_and_the_challenge_stays_fair(contexts, server_url):
    owner = contexts()
    owner.add_init_script(SECRET_WATCH)
    projector = watch_console(owner.new_page())
    code = make_class(projector, server_url, "MC886 lecture 9")
    class_url = projector.url
    secret = projector.evaluate("() => Object.entries(localStorage).find(([k]) => k.includes('lecturer-secret'))[1]")
    assert len(secret) >= 24 and secret not in projector.content().split("<script")[0]
    projector.get_by_test_id("challenge-parameters").fill("10000")
    projector.get_by_test_id("challenge-set").click()
    projector.wait_for_function(
        "() => document.querySelector('[data-testid=challenge-text]').textContent.includes('Round 1')"
    )
    projector.reload()
    projector.get_by_test_id("room-counts").wait_for()

    # on the owner's laptop (another tab of the same browser): the link, shown on request and hidden again
    laptop = watch_console(owner.new_page())
    laptop.goto(class_url)
    laptop.get_by_test_id("show-lecturer-link").click()
    link = laptop.get_by_test_id("lecturer-link").input_value()
    assert link.endswith(f"/class?code={code}#lecturer={secret}")
    laptop.get_by_test_id("hide-lecturer-link").click()
    assert laptop.get_by_test_id("lecturer-token").is_hidden() and secret not in laptop.inner_text("body")
    laptop.close()

    # the second device opens the link: a lecturer at once, the secret gone from its address bar
    tablet = watch_console(contexts().new_page())
    tablet.goto(link)
    tablet.wait_for_url(lambda url: "class=" in url)
    tablet.get_by_test_id("room-counts").wait_for()
    assert "a lecturer" in tablet.get_by_test_id("you-are").inner_text() and "#lecturer" not in tablet.url
    assert tablet.get_by_test_id("end-class").is_hidden()  # only the owner ends the class

    # a leader (made through the API) and a student who copies the leader's model
    leader = api_student(server_url)
    assert leader.post("/api/classes/join", json={"code": code, "name": "Leader"}).status_code == 200
    class_id = class_url.split("class=")[1]
    entered = leader.post(f"/api/classes/{class_id}/entries", json={"model": trained_by_api(leader, train_size=2000)})
    assert entered.status_code == 201, entered.text
    student = watch_console(contexts().new_page())
    student.goto(f"{server_url}/class?code={code}")
    student.get_by_test_id("join-name").fill("Ada")
    student.get_by_test_id("join-button").click()
    student.wait_for_url(lambda url: "class=" in url)
    student.get_by_test_id("leaderboard-row").first.wait_for()
    with student.expect_navigation():
        student.get_by_role("link", name="Open Leader's model").click()
    student.get_by_test_id("copy-model").click()
    student.wait_for_url(lambda url: "model=c" in url)
    student.goto(class_url)
    student.locator("[data-testid=entry-model] option", has_text="a copy").wait_for(state="attached")
    student.get_by_test_id("entry-model").select_option(index=0)
    student.get_by_test_id("enter-button").click()
    error = student.get_by_test_id("challenge-error")
    error.wait_for()
    assert "it is a copy of another model" in error.inner_text()
    student.screenshot(path=RESULTS / "class-student-refused-1280x720.png")

    # a new round empties the board, and the form shows the new challenge after a reload
    projector.get_by_test_id("leaderboard-row").first.wait_for()
    projector.get_by_test_id("challenge-parameters").fill("5000")
    projector.get_by_test_id("challenge-epochs").fill("2")
    projector.get_by_test_id("challenge-set").click()
    projector.wait_for_function(
        "() => document.querySelector('[data-testid=challenge-text]').textContent.includes('Round 2')"
    )
    projector.wait_for_function(
        "() => document.querySelector('[data-testid=leaderboard]').textContent.includes('No entries')"
    )
    projector.reload()
    projector.get_by_test_id("room-counts").wait_for()
    projector.wait_for_function("() => document.querySelector('[data-testid=challenge-parameters]').value === '5000'")
    assert projector.get_by_test_id("challenge-epochs").input_value() == "2"
    projector.get_by_test_id("round-select").select_option("1")
    projector.get_by_test_id("leaderboard-row").first.wait_for()
    assert "Leader" in projector.get_by_test_id("leaderboard").inner_text()
    projector.screenshot(path=RESULTS / "class-projector-1280x720.png")
    assert secret_was_shown(projector) is None, f"the secret was on screen at {secret_was_shown(projector)}"
    for page in (projector, tablet, student):
        page.console_errors.check(allowed=("422",))


def test_sixty_members_leave_the_counts_challenge_and_leaderboard_on_the_first_screen(contexts, server_url):
    owner = contexts()
    projector = watch_console(owner.new_page())
    code = make_class(projector, server_url, "A big lecture")
    class_id = projector.url.split("class=")[1]
    projector.get_by_test_id("challenge-set").click()
    projector.wait_for_function(
        "() => document.querySelector('[data-testid=challenge-text]').textContent.includes('Round 1')"
    )
    students = [api_student(server_url) for _ in range(60)]
    for k, student in enumerate(students):
        assert student.post("/api/classes/join", json={"code": code, "name": f"Student {k:02d}"}).status_code == 200
    for k, student in enumerate(students[:3]):  # three entries, so that the board has rows
        model = trained_by_api(student, train_size=300 * (k + 1))
        assert student.post(f"/api/classes/{class_id}/entries", json={"model": model}).status_code == 201
    projector.reload()
    projector.wait_for_function("() => document.querySelector('[data-testid=count-joined]').textContent === '60'")
    projector.get_by_test_id("leaderboard-row").nth(2).wait_for()
    for testid in ("room-counts", "challenge", "leaderboard"):
        box = projector.get_by_test_id(testid).bounding_box()
        assert box["y"] + box["height"] <= 720, f"{testid} ends at {box['y'] + box['height']:.0f} px"
    assert projector.get_by_test_id("count-with-model").inner_text() == "3"
    assert projector.get_by_test_id("count-entered").inner_text() == "3"
    projector.get_by_test_id("members-filter").fill("Student 05")
    assert projector.get_by_test_id("member-row").count() == 1
    projector.get_by_test_id("members-filter").fill("")
    projector.get_by_test_id("members-sort").select_option("best")
    assert projector.get_by_test_id("member-row").first.locator("td").nth(2).inner_text().endswith("%")
    projector.screenshot(path=RESULTS / "class-sixty-1280x720.png")

    phone = watch_console(contexts(390, 844, touch=True).new_page())
    student_code = code
    phone.goto(f"{server_url}/class?code={student_code}")
    phone.get_by_test_id("join-button").click()
    phone.wait_for_url(lambda url: "class=" in url)
    phone.get_by_test_id("leaderboard-row").nth(2).wait_for()
    for k in range(3):
        assert phone.get_by_test_id("leaderboard-row").nth(k).bounding_box()["height"] <= 80
    layers = phone.get_by_test_id("leaderboard-row").first.locator(".layers-line")
    layers.tap()
    assert layers.get_attribute("aria-expanded") == "true"
    phone.screenshot(path=RESULTS / "class-student-390x844.png", full_page=True)
    lecturer_phone = watch_console(owner.new_page())
    lecturer_phone.set_viewport_size({"width": 390, "height": 844})
    lecturer_phone.goto(projector.url)
    lecturer_phone.get_by_test_id("room-counts").wait_for()
    lecturer_phone.screenshot(path=RESULTS / "class-lecturer-390x844.png")
    for page in (projector, phone, lecturer_phone):
        page.console_errors.check()
