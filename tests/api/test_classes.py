"""A class on one server, through the API: codes and lecturer tokens, who sees what, publishing, the
challenge and its leaderboard, and every bound and refusal."""

from __future__ import annotations

import re
import time

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.jobs.worker import run_jobs
from app.main import create_app
from engine.architectures import ARCHITECTURES
from tests.api.conftest import browser, ok

TINY = ARCHITECTURES["tiny"]  # 1,554 parameters


@pytest.fixture()
def app(tmp_path):
    settings = Settings(
        data_dir=tmp_path,
        class_code_delay_seconds=0.3,
        class_code_failures_per_address=4,
        max_class_members=4,
        max_entries_per_student=2,
    )
    application = create_app(settings)
    with TestClient(application):
        yield application


@pytest.fixture()
def room(app):
    """A lecturer with a class, and two students in it."""
    lecturer, ada, bea = browser(app), browser(app), browser(app)
    made = ok(lecturer.post("/api/classes", json={"name": "MC886 lecture 7"}), 201)
    ok(ada.post("/api/classes/join", json={"code": made["code"]}))
    ok(bea.post("/api/classes/join", json={"code": made["code"], "name": "Bea"}))
    return made, lecturer, ada, bea


def trained(app, client: TestClient, **extra) -> str:
    job = ok(client.post("/api/models", json={"architecture": TINY, "train_size": 600, **extra}), 202)
    run_jobs(app.state.settings, app.state.store)
    assert ok(client.get(f"/api/models/{job['id']}"))["status"] == "done"
    return job["id"]


def test_a_class_has_a_code_a_student_can_type_and_a_secret_lecturer_token(app, room):
    made, lecturer, ada, bea = room
    assert re.fullmatch(r"[A-HJ-NP-Z2-9]{6}", made["code"])  # no 0, O, 1 or I
    assert made["role"] == "lecturer" and made["join_url"] == f"/class?code={made['code']}"
    assert len(made["lecturer_token"]) >= 24
    view = ok(ada.get(f"/api/classes/{made['id']}"))
    assert view["role"] == "student" and view["member_name"] == "Student 1" and view["members"] is None
    assert "token" not in str(view) and "token" not in str(ok(lecturer.get(f"/api/classes/{made['id']}")))
    assert [c["role"] for c in ok(bea.get("/api/classes"))["classes"]] == ["student"]
    # typed in lower case with a space: still the code
    late = browser(app)
    spaced = made["code"][:3].lower() + " " + made["code"][3:].lower()
    assert ok(late.post("/api/classes/join", json={"code": spaced}))["member_name"] == "Student 3"


def test_the_lecturer_token_makes_another_browser_a_lecturer_and_a_wrong_one_is_403(app, room):
    made, *_ = room
    projector = browser(app)
    wrong = projector.post("/api/classes/join", json={"code": made["code"], "lecturer_token": "guess"})
    assert wrong.status_code == 403
    joined = ok(
        projector.post("/api/classes/join", json={"code": made["code"], "lecturer_token": made["lecturer_token"]})
    )
    assert joined["role"] == "lecturer"
    assert [m["role"] for m in ok(projector.get(f"/api/classes/{made['id']}"))["members"]].count("lecturer") == 2


def test_a_wrong_code_is_404_after_a_constant_delay_and_an_address_that_guesses_is_refused(app, room):
    guesser = browser(app)
    for _ in range(4):
        started = time.monotonic()
        response = guesser.post("/api/classes/join", json={"code": "ZZZZZZ"})
        assert response.status_code == 404 and time.monotonic() - started >= 0.29
    refused = guesser.post("/api/classes/join", json={"code": room[0]["code"]})  # even the right one, for a while
    assert refused.status_code == 429 and "Retry-After" in refused.headers


def test_a_full_class_refuses_the_next_member(app, room):
    made, *_ = room
    ok(browser(app).post("/api/classes/join", json={"code": made["code"]}))  # the 4th member
    full = browser(app).post("/api/classes/join", json={"code": made["code"]})
    assert full.status_code == 409 and "full (4 members)" in full.json()["detail"]


def test_the_lecturer_sees_students_jobs_and_models_read_only_and_students_do_not_see_each_other(app, room):
    made, lecturer, ada, bea = room
    model = trained(app, ada, name="ada's tiny")
    members = ok(lecturer.get(f"/api/classes/{made['id']}"))["members"]
    ada_row = next(m for m in members if m["name"] == "Student 1")
    job = ada_row["jobs"][0]
    assert job["name"] == "ada's tiny" and job["status"] == "done" and job["parameters"] == 1554
    assert 0 < job["test_accuracy"] < 1
    assert ok(lecturer.get(f"/api/models/{model}"))["name"] == "ada's tiny"
    assert lecturer.post(f"/api/predict?model={model}", json={"pixels": [[0] * 28] * 28}).status_code == 200
    assert lecturer.post(f"/api/models/{model}/cancel").status_code == 404  # read-only: not the lecturer's to stop
    assert bea.get(f"/api/models/{model}").status_code == 404
    assert bea.get(f"/api/classes/{made['id']}/events").status_code == 403
    assert browser(app).get(f"/api/classes/{made['id']}").status_code == 404  # not in the class


def test_publishing_a_model_and_a_design_reaches_the_students(app, room):
    made, lecturer, ada, bea = room
    own = trained(app, lecturer, name="the lecturer's start")
    model = ok(lecturer.post(f"/api/classes/{made['id']}/publish", json={"model": own}), 201)
    assert model["model"].startswith("s")  # students get a read-only share link
    ok(
        lecturer.post(f"/api/classes/{made['id']}/publish", json={"design": {"name": "Small", "architecture": TINY}}),
        201,
    )
    listed = {m["id"]: m for m in ok(ada.get("/api/models"))}
    assert listed[model["model"]]["group"] == "lecturer" and listed[model["model"]]["name"] == "the lecturer's start"
    designs = [p for p in ok(bea.get("/api/classes/publications"))["publications"] if p["kind"] == "design"]
    assert designs[0]["name"] == "Small" and designs[0]["architecture"] == TINY
    copy = ok(ada.post(f"/api/models/{model['model']}/copy"), 201)
    assert ok(ada.get(f"/api/models/{copy['id']}"))["name"].endswith("(copy)")
    assert ada.post(f"/api/classes/{made['id']}/publish", json={"model": own}).status_code == 403
    broken = {"design": {"name": "x", "architecture": {**TINY, "layers": [{"type": "conv"}]}}}
    assert lecturer.post(f"/api/classes/{made['id']}/publish", json=broken).status_code == 422
    both = lecturer.post(f"/api/classes/{made['id']}/publish", json={"model": own, "design": broken["design"]})
    assert both.status_code == 422


def test_the_challenge_scores_entries_on_held_out_pictures_and_ranks_them(app, room):
    made, lecturer, ada, bea = room
    url = f"/api/classes/{made['id']}"
    assert ada.put(f"{url}/challenge", json={"max_parameters": 10_000}).status_code == 403
    assert ok(ada.get(f"{url}/challenge"))["challenge"] is None
    assert ada.post(f"{url}/entries", json={"model": "lenet"}).status_code == 409  # no challenge yet
    set_ = ok(lecturer.put(f"{url}/challenge", json={"dataset": "digits", "max_parameters": 10_000, "max_epochs": 3}))
    assert set_ == ok(bea.get(f"{url}/challenge"))["challenge"] and set_["test_size"] == 400
    weak = trained(app, ada, name="weak")
    strong = trained(app, bea, name="strong", train_size=4000, epochs=2)
    first = ok(ada.post(f"{url}/entries", json={"model": weak}), 201)
    second = ok(bea.post(f"{url}/entries", json={"model": strong}), 201)
    assert second["score"] > first["score"]
    board = ok(ada.get(f"{url}/leaderboard"))["entries"]
    assert [e["student"] for e in board] == ["Bea", "Student 1"]
    assert board[0]["layers"] == "conv 4@5x5 → maxpool → fc 10" and board[0]["parameters"] == 1554
    assert ada.get(board[0]["url"].replace("/?model=", "/api/models/")).status_code == 200  # opens for the class


def test_entries_outside_the_rules_are_refused_with_the_figure(app, room):
    made, lecturer, ada, bea = room
    url = f"/api/classes/{made['id']}"
    ok(lecturer.put(f"{url}/challenge", json={"dataset": "digits", "max_parameters": 1000, "max_epochs": 1}))
    model = trained(app, ada)
    over = ada.post(f"{url}/entries", json={"model": model})
    assert over.status_code == 422 and "1,554 parameters, over the challenge's budget of 1,000" in over.json()["detail"]
    ok(lecturer.put(f"{url}/challenge", json={"dataset": "fashion", "max_parameters": 5000}))
    assert "the challenge is on fashion" in ada.post(f"{url}/entries", json={"model": model}).json()["detail"]
    ok(lecturer.put(f"{url}/challenge", json={"dataset": "digits", "max_parameters": 5000, "max_epochs": 1}))
    assert bea.post(f"{url}/entries", json={"model": model}).status_code == 404  # not hers to enter
    assert lecturer.post(f"{url}/entries", json={"model": model}).status_code == 403
    edit = ok(ada.post(f"/api/models/{model}/edit", json={"edits": [{"op": "zero", "layer": "conv1", "unit": 0}]}), 201)
    assert ada.post(f"{url}/entries", json={"model": edit["id"]}).status_code == 422  # trained, not edited
    for _ in range(2):
        ok(ada.post(f"{url}/entries", json={"model": model}), 201)
    assert ada.post(f"{url}/entries", json={"model": model}).status_code == 429  # 2 entries a student
    ok(
        lecturer.put(
            f"{url}/challenge", json={"dataset": "digits", "max_parameters": 5000, "deadline": time.time() - 1}
        )
    )
    assert "deadline has passed" in bea.post(f"{url}/entries", json={"model": trained(app, bea)}).json()["detail"]


def test_leaving_takes_a_students_entries_and_ending_a_class_keeps_every_model(app, room):
    made, lecturer, ada, bea = room
    url = f"/api/classes/{made['id']}"
    ok(lecturer.put(f"{url}/challenge", json={"dataset": "digits", "max_parameters": 5000}))
    model = trained(app, ada)
    ok(ada.post(f"{url}/entries", json={"model": model}), 201)
    assert ada.delete(f"{url}/me").status_code == 204
    assert ok(lecturer.get(f"{url}/leaderboard"))["entries"] == []
    assert ada.get(url).status_code == 404
    assert ada.delete(url).status_code == 404 and bea.delete(url).status_code == 403
    assert lecturer.delete(url).status_code == 204
    assert ok(ada.get(f"/api/models/{model}"))["status"] == "done"  # the student's model stays hers
    assert lecturer.get(f"/api/models/{model}").status_code == 404  # and the lecturer no longer sees it
    assert ok(bea.get("/api/classes"))["classes"] == []
    assert bea.post("/api/classes/join", json={"code": made["code"]}).status_code == 404


def test_a_member_renames_and_the_qr_code_is_an_svg_of_the_join_url(app, room):
    made, lecturer, ada, bea = room
    assert ok(ada.put(f"/api/classes/{made['id']}/me", json={"name": "Ada"}))["member_name"] == "Ada"
    assert "Ada" in [m["name"] for m in ok(lecturer.get(f"/api/classes/{made['id']}"))["members"]]
    qr = ada.get(f"/api/classes/{made['id']}/qr.svg")
    assert qr.headers["content-type"] == "image/svg+xml" and qr.text.startswith("<svg")
    assert browser(app).get(f"/api/classes/{made['id']}/qr.svg").status_code == 404
    assert ada.put(f"/api/classes/{made['id']}/me", json={"name": "\u0007"}).status_code == 422
