"""A class on one server, through the API: codes and the lecturer's secret, roles that hold (owner,
lecturer, student), guards a school behind one address can live with, publishing, and a fair challenge in
rounds whose leaderboard lists each student's own trained work once."""

from __future__ import annotations

import re
import time

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.jobs.worker import run_jobs
from app.main import create_app
from engine.architectures import ARCHITECTURES
from tests.api.conftest import at_once, browser, ok

TINY = ARCHITECTURES["tiny"]  # 1,554 parameters


def make_app(tmp_path, **overrides):
    bounds = {
        "class_code_delay_seconds": 0.05,
        "class_code_failures_per_address": 4,
        "max_class_members": 4,
        "max_entries_per_student": 2,
    }
    return create_app(Settings(data_dir=tmp_path, **{**bounds, **overrides}))


@pytest.fixture()
def app(tmp_path):
    application = make_app(tmp_path)
    with TestClient(application):
        yield application


@pytest.fixture()
def room(app):
    """A lecturer (the class's owner) with a class, and two students in it."""
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


def test_a_class_has_a_code_a_student_can_type_and_a_secret_answered_once(app, room):
    made, lecturer, ada, bea = room
    assert re.fullmatch(r"[A-HJ-NP-Z2-9]{6}", made["code"])  # no 0, O, 1 or I
    assert made["role"] == "lecturer" and made["owner"] is True
    assert made["join_url"] == f"/class?code={made['code']}"  # relative without CONVSCOPE_PUBLIC_URL
    assert len(made["lecturer_token"]) >= 24
    view = ok(ada.get(f"/api/classes/{made['id']}"))
    assert view["role"] == "student" and view["member_name"] == "Student 1" and view["members"] is None
    assert [c["role"] for c in ok(bea.get("/api/classes"))["classes"]] == ["student"]
    # typed in lower case with a space: still the code
    late = browser(app)
    spaced = made["code"][:3].lower() + " " + made["code"][3:].lower()
    assert ok(late.post("/api/classes/join", json={"code": spaced}))["member_name"] == "Student 3"


def every_answer(client: TestClient, class_id: str) -> str:
    """The text of every answer a member can get about the class."""
    urls = ["/api/classes", "/api/classes/publications", f"/api/classes/{class_id}"]
    urls += [f"/api/classes/{class_id}/challenge", f"/api/classes/{class_id}/leaderboard"]
    return " ".join(client.get(url).text for url in urls)


def test_the_secret_is_never_answered_again_and_a_new_one_retires_the_old(app, room):
    made, lecturer, ada, bea = room
    url = f"/api/classes/{made['id']}"
    ok(lecturer.put(f"{url}/challenge", json={"max_parameters": 10_000}))
    laptop = browser(app)
    joined = ok(laptop.post("/api/classes/join", json={"code": made["code"], "lecturer_token": made["lecturer_token"]}))
    assert joined["role"] == "lecturer" and joined["owner"] is False
    for client in (lecturer, laptop, ada):
        assert made["lecturer_token"] not in every_answer(client, made["id"])
    # only the owner renews the secret; the old one then gets 403 at once
    assert laptop.post(f"{url}/lecturer-token").status_code == 403
    assert ada.post(f"{url}/lecturer-token").status_code == 403
    renewed = ok(lecturer.post(f"{url}/lecturer-token"), 201)["lecturer_token"]
    assert renewed != made["lecturer_token"]
    stale = browser(app).post(
        "/api/classes/join", json={"code": made["code"], "lecturer_token": made["lecturer_token"]}
    )
    assert stale.status_code == 403 and "not this class's current lecturer secret" in stale.json()["detail"]
    promoted = ok(bea.post("/api/classes/join", json={"code": made["code"], "lecturer_token": renewed}))
    assert promoted["role"] == "lecturer" and promoted["member_name"] == "Bea"  # a student promoted keeps her name
    assert renewed not in every_answer(lecturer, made["id"])


def test_the_lecturers_view_names_each_members_role_and_how_they_joined(app, room):
    made, lecturer, ada, bea = room
    laptop = browser(app)
    secret = {"code": made["code"], "lecturer_token": made["lecturer_token"], "name": "Laptop"}
    ok(laptop.post("/api/classes/join", json=secret))
    view = ok(laptop.get(f"/api/classes/{made['id']}"))
    rows = {m["name"]: m for m in view["members"]}
    assert rows["Lecturer"]["owner"] and rows["Lecturer"]["via"] == "created"
    promoted = [m for m in view["members"] if m["via"] == "token"]
    assert len(promoted) == 1 and promoted[0]["role"] == "lecturer" and promoted[0]["lecturer_since"] > 0
    assert rows["Bea"]["role"] == "student" and rows["Bea"]["via"] == "code" and rows["Bea"]["lecturer_since"] is None
    assert len({m["member_id"] for m in view["members"]}) == 4
    assert view["counts"] == {"joined": 2, "training": 0, "with_model": 0, "entered": 0}
    assert view["room"]["restart"] == "scripts/serve.sh --host 0.0.0.0"


def test_only_the_owner_ends_the_class_and_any_lecturer_removes_a_member(app, room):
    made, lecturer, ada, bea = room
    url = f"/api/classes/{made['id']}"
    laptop = browser(app)
    secret = {"code": made["code"], "lecturer_token": made["lecturer_token"], "name": "Laptop"}
    ok(laptop.post("/api/classes/join", json=secret))
    model = trained(app, bea)
    assert laptop.delete(url).status_code == 403 and bea.delete(url).status_code == 403
    members = {m["name"]: m["member_id"] for m in ok(laptop.get(url))["members"]}
    assert bea.delete(f"{url}/members/{members['Student 1']}").status_code == 403  # students cannot
    assert laptop.delete(f"{url}/members/{members['Lecturer']}").status_code == 403  # nor anyone the owner
    assert laptop.delete(f"{url}/members/unknown").status_code == 404
    assert laptop.delete(f"{url}/members/{members['Bea']}").status_code == 204
    assert bea.get(url).status_code == 404 and bea.get(f"{url}/leaderboard").status_code == 404
    assert ok(bea.get(f"/api/models/{model}"))["status"] == "done"  # her model stays hers
    assert lecturer.delete(f"{url}/me").status_code == 409  # the owner ends the class rather than leave it
    assert lecturer.delete(url).status_code == 204
    assert laptop.get(url).status_code == 404


def test_wrong_codes_from_a_school_never_lock_out_a_classmate_but_one_guesser_is_slowed_then_refused(tmp_path):
    """40 students behind one address each mistype three times; one browser keeps guessing."""
    application = make_app(
        tmp_path, class_code_failures_per_address=1500, class_code_delay_seconds=0.05, max_class_members=100
    )
    with TestClient(application):
        lecturer = browser(application)
        code = ok(lecturer.post("/api/classes", json={"name": "a big lecture"}), 201)["code"]
        students = [browser(application) for _ in range(40)]
        for student in students:  # all 120 mistakes first, from the school's one address
            assert at_once(application, student, "POST", "/api/classes/join", [{"code": "ZZZZZZ"}] * 3) == [404] * 3
        for student in students:
            assert student.post("/api/classes/join", json={"code": code}).status_code == 200

        guesser, waits = browser(application), []
        statuses = []
        for _ in range(11):
            started = time.monotonic()
            statuses.append(guesser.post("/api/classes/join", json={"code": "YYYYYY"}).status_code)
            waits.append(time.monotonic() - started)
        assert statuses == [404] * 10 + [429]
        assert waits[0] >= 0.045 and waits[6] >= 0.4  # past three in a row, each answer waits twice as long (0.8 s)
        refused = guesser.post("/api/classes/join", json={"code": code})
        assert refused.status_code == 429 and "in a row" in refused.json()["detail"]
        assert ok(browser(application).post("/api/classes/join", json={"code": code}))["role"] == "student"


def test_guesses_are_counted_in_the_store_for_every_process(tmp_path):
    """Two web processes (two apps on one store): an address's wrong codes add up across both."""
    first, second = make_app(tmp_path), make_app(tmp_path)
    with TestClient(first), TestClient(second):
        code = ok(browser(first).post("/api/classes", json={"name": "two processes"}), 201)["code"]
        for app in (first, second, first, second):  # 4 wrong codes, the address's bound here
            assert browser(app).post("/api/classes/join", json={"code": "ZZZZZZ"}).status_code == 404
        for app in (first, second):
            assert browser(app).post("/api/classes/join", json={"code": code}).status_code == 429
        # a wrong lecturer token counts too, and is answered after the same delay
        assert first.state.store.tally_count("wrong-code:a:testclient") == 4


def test_a_student_never_sees_the_seed_of_the_held_out_pictures(app, room):
    made, lecturer, ada, bea = room
    ok(lecturer.put(f"/api/classes/{made['id']}/challenge", json={"max_parameters": 10_000}))
    assert '"seed"' not in every_answer(ada, made["id"])
    assert '"seed"' not in every_answer(lecturer, made["id"])


def test_a_full_class_refuses_the_next_member(app, room):
    made, *_ = room
    ok(browser(app).post("/api/classes/join", json={"code": made["code"]}))  # the 4th member
    full = browser(app).post("/api/classes/join", json={"code": made["code"]})
    assert full.status_code == 409 and "full (4 members)" in full.json()["detail"]


def test_the_lecturer_sees_students_jobs_and_models_read_only_and_students_do_not_see_each_other(app, room):
    made, lecturer, ada, bea = room
    model = trained(app, ada, name="ada's tiny")
    view = ok(lecturer.get(f"/api/classes/{made['id']}"))
    ada_row = next(m for m in view["members"] if m["name"] == "Student 1")
    job = ada_row["jobs"][0]
    assert job["name"] == "ada's tiny" and job["status"] == "done" and job["parameters"] == 1554
    assert 0 < job["test_accuracy"] < 1 and ada_row["best_accuracy"] == job["test_accuracy"]
    assert view["counts"]["with_model"] == 1
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


def test_the_challenge_scores_entries_on_held_out_pictures_and_lists_each_student_once(app, room):
    made, lecturer, ada, bea = room
    url = f"/api/classes/{made['id']}"
    assert ada.put(f"{url}/challenge", json={"max_parameters": 10_000}).status_code == 403
    assert ok(ada.get(f"{url}/challenge"))["challenge"] is None
    assert ada.post(f"{url}/entries", json={"model": "lenet"}).status_code == 409  # no challenge yet
    set_ = ok(lecturer.put(f"{url}/challenge", json={"dataset": "digits", "max_parameters": 10_000, "max_epochs": 3}))
    assert set_ == ok(bea.get(f"{url}/challenge"))["challenge"] and set_["test_size"] == 400 and set_["round"] == 1
    weak, weaker = trained(app, ada, name="weak", seed=1), trained(app, ada, name="weaker", train_size=200, seed=2)
    strong = trained(app, bea, name="strong", train_size=4000, epochs=2, seed=3)
    first = ok(ada.post(f"{url}/entries", json={"model": weak}), 201)
    ok(ada.post(f"{url}/entries", json={"model": weaker}), 201)
    second = ok(bea.post(f"{url}/entries", json={"model": strong}), 201)
    assert second["score"] > first["score"]
    board = ok(ada.get(f"{url}/leaderboard"))
    assert [(e["student"], e["attempts"]) for e in board["entries"]] == [("Bea", 1), ("Student 1", 2)]
    assert board["entries"][1]["score"] == max(first["score"], ok(ada.get(f"{url}/leaderboard"))["entries"][1]["score"])
    assert board["entries"][0]["layers"] == "conv 4@5x5 → maxpool → fc 10" and board["entries"][0]["parameters"] == 1554
    assert ada.get(board["entries"][0]["url"].replace("/?model=", "/api/models/")).status_code == 200
    again = ada.post(f"{url}/entries", json={"model": weak})
    assert again.status_code == 409 and "already entered in this round" in again.json()["detail"]
    assert ok(lecturer.get(url))["counts"]["entered"] == 2


def test_a_copy_a_share_a_publication_an_import_and_an_edit_are_refused_with_the_reason(app, room):
    made, lecturer, ada, bea = room
    url = f"/api/classes/{made['id']}"
    ok(lecturer.put(f"{url}/challenge", json={"dataset": "digits", "max_parameters": 100_000}))
    theirs = trained(app, bea, name="bea's")
    share = ok(bea.post(f"/api/models/{theirs}/share"))["share_id"]
    published = ok(lecturer.post(f"{url}/publish", json={"model": trained(app, lecturer)}), 201)["model"]
    mine = trained(app, ada, name="ada's")
    exported = ada.get(f"/api/models/{mine}/export?format=onnx").content
    imported = ok(ada.post("/api/models/import", files={"file": ("m.onnx", exported)}, data={"dataset": "digits"}), 201)
    edit = ok(ada.post(f"/api/models/{mine}/edit", json={"edits": [{"op": "zero", "layer": "conv1", "unit": 0}]}), 201)
    tuned = trained(app, ada, start_from=imported["id"], architecture=None)
    cases = {
        ok(ada.post(f"/api/models/{share}/copy"), 201)["id"]: "it is a copy of another model",
        share: "it is someone else's model",
        published: "it is someone else's model",
        imported["id"]: "it is an imported ONNX file",
        edit["id"]: "it is an edited model",
        tuned: "it is fine-tuned from a model that is an imported ONNX file",
        "lenet": "it is a model shipped with convscope",
    }
    for model, reason in cases.items():
        refused = ada.post(f"{url}/entries", json={"model": model})
        assert refused.status_code == 422 and reason in refused.json()["detail"], (model, refused.text)
    # fine-tuned from a shipped model, or from her own trained one: her work
    own_line = trained(app, ada, start_from=trained(app, ada, start_from="lenet", architecture=None), architecture=None)
    assert ok(ada.get(f"/api/models/{own_line}"))["origin"] == "trained"
    ok(ada.post(f"{url}/entries", json={"model": own_line}), 201)


def test_weights_identical_to_another_students_entry_are_refused_naming_it(app, room):
    made, lecturer, ada, bea = room
    url = f"/api/classes/{made['id']}"
    ok(lecturer.put(f"{url}/challenge", json={"dataset": "digits", "max_parameters": 10_000}))
    same = {"seed": 7, "train_size": 300}
    ok(bea.post(f"{url}/entries", json={"model": trained(app, bea, name="bea's run", **same)}), 201)
    twin = ada.post(f"{url}/entries", json={"model": trained(app, ada, **same)})
    assert twin.status_code == 409 and "byte for byte those of Bea's entry \"bea's run\"" in twin.json()["detail"]


def test_parallel_entries_stop_at_the_cap(tmp_path):
    application = make_app(tmp_path, max_entries_per_student=5, max_jobs_per_workspace=10)
    with TestClient(application):
        lecturer, ada = browser(application), browser(application)
        made = ok(lecturer.post("/api/classes", json={"name": "parallel"}), 201)
        ok(ada.post("/api/classes/join", json={"code": made["code"]}))
        url = f"/api/classes/{made['id']}"
        ok(lecturer.put(f"{url}/challenge", json={"dataset": "digits", "max_parameters": 10_000}))
        jobs = [
            ok(ada.post("/api/models", json={"architecture": TINY, "train_size": 64}), 202)["id"] for _ in range(10)
        ]
        run_jobs(application.state.settings, application.state.store)
        statuses = at_once(application, ada, "POST", f"{url}/entries", [{"model": m} for m in jobs])
        assert sorted(statuses) == [201] * 5 + [429] * 5
        assert ok(ada.get(f"{url}/leaderboard"))["entries"][0]["attempts"] == 5


def test_entries_outside_the_rules_are_refused_with_the_figure(app, room):
    made, lecturer, ada, bea = room
    url = f"/api/classes/{made['id']}"
    ok(lecturer.put(f"{url}/challenge", json={"dataset": "digits", "max_parameters": 1000, "max_epochs": 1}))
    model = trained(app, ada, epochs=1)
    over = ada.post(f"{url}/entries", json={"model": model})
    assert over.status_code == 422 and "1,554 parameters, over the challenge's budget of 1,000" in over.json()["detail"]
    ok(lecturer.put(f"{url}/challenge", json={"dataset": "fashion", "max_parameters": 5000}))
    assert "the challenge is on fashion" in ada.post(f"{url}/entries", json={"model": model}).json()["detail"]
    ok(lecturer.put(f"{url}/challenge", json={"dataset": "digits", "max_parameters": 5000, "max_epochs": 1}))
    assert bea.post(f"{url}/entries", json={"model": model}).status_code == 404  # not hers to enter
    assert lecturer.post(f"{url}/entries", json={"model": model}).status_code == 403
    ok(ada.post(f"{url}/entries", json={"model": model}), 201)
    ok(ada.post(f"{url}/entries", json={"model": trained(app, ada, epochs=1)}), 201)
    assert ada.post(f"{url}/entries", json={"model": trained(app, ada, epochs=1)}).status_code == 429  # 2 a round
    late = {"dataset": "digits", "max_parameters": 5000, "max_epochs": 1, "deadline": time.time() - 1}
    ok(lecturer.put(f"{url}/challenge", json=late))
    assert "deadline has passed" in bea.post(f"{url}/entries", json={"model": trained(app, bea)}).json()["detail"]


def test_new_rules_start_a_round_with_an_empty_board_and_earlier_rounds_stay_readable(app, room):
    made, lecturer, ada, bea = room
    url = f"/api/classes/{made['id']}"
    rules = {"dataset": "digits", "max_parameters": 10_000, "max_epochs": 3}
    assert ok(lecturer.put(f"{url}/challenge", json=rules))["round"] == 1
    model = trained(app, ada)
    ok(ada.post(f"{url}/entries", json={"model": model}), 201)
    # the same rules with a deadline: the same round, and its board
    assert ok(lecturer.put(f"{url}/challenge", json={**rules, "deadline": time.time() + 3600}))["round"] == 1
    assert len(ok(bea.get(f"{url}/leaderboard"))["entries"]) == 1
    second = ok(lecturer.put(f"{url}/challenge", json={**rules, "max_parameters": 5000}))
    assert second["round"] == 2 and second["max_parameters"] == 5000
    board = ok(bea.get(f"{url}/leaderboard"))
    assert board["entries"] == [] and board["round"] == 2 and board["rounds"] == 2
    assert ok(bea.get(f"{url}/challenge"))["challenge"]["round"] == 2
    first = ok(bea.get(f"{url}/leaderboard?round=1"))
    assert first["challenge"]["max_parameters"] == 10_000 and [e["round"] for e in first["entries"]] == [1]
    assert bea.get(f"{url}/leaderboard?round=3").status_code == 404
    ok(ada.post(f"{url}/entries", json={"model": model}), 201)  # the same model may enter the new round
    assert ok(lecturer.get(url))["counts"]["entered"] == 1


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


def test_a_member_renames_and_the_qr_code_is_an_svg_of_the_join_link(app, room):
    made, lecturer, ada, bea = room
    assert ok(ada.put(f"/api/classes/{made['id']}/me", json={"name": "Ada"}))["member_name"] == "Ada"
    assert "Ada" in [m["name"] for m in ok(lecturer.get(f"/api/classes/{made['id']}"))["members"]]
    qr = ada.get(f"/api/classes/{made['id']}/qr.svg")
    assert qr.headers["content-type"] == "image/svg+xml" and qr.text.startswith("<svg")
    assert browser(app).get(f"/api/classes/{made['id']}/qr.svg").status_code == 404
    assert ada.put(f"/api/classes/{made['id']}/me", json={"name": "\u0007"}).status_code == 422


def test_the_public_url_makes_every_join_link_absolute(tmp_path):
    application = make_app(tmp_path, public_url="http://10.0.0.5:8000")
    with TestClient(application):
        lecturer, student = browser(application), browser(application)
        made = ok(lecturer.post("/api/classes", json={"name": "room 101"}), 201)
        link = f"http://10.0.0.5:8000/class?code={made['code']}"
        assert made["join_url"] == link
        assert ok(student.post("/api/classes/join", json={"code": made["code"]}))["join_url"] == link
        assert ok(student.get("/api/classes"))["classes"][0]["join_url"] == link
        view = ok(lecturer.get(f"/api/classes/{made['id']}"))
        assert view["join_url"] == link and view["room"]["join_bases"] == ["http://10.0.0.5:8000"]
    assert Settings.model_fields["public_url"].default is None
    with pytest.raises(ValueError, match="public_url"):
        Settings(public_url="10.0.0.5:8000/")


def qr_of(url: str) -> str:
    import io

    import segno

    buffer = io.BytesIO()
    segno.make(url, error="m").save(buffer, kind="svg", scale=8, border=2, xmldecl=False, svgclass="qr")
    return buffer.getvalue().decode()


def test_a_page_opened_at_loopback_offers_the_addresses_phones_can_reach(tmp_path, monkeypatch):
    from app import reach

    monkeypatch.setattr(reach, "interface_addresses", lambda: ["10.0.0.5", "192.168.1.20"])
    application = make_app(tmp_path, host="0.0.0.0", port=8123)
    with TestClient(application, base_url="http://127.0.0.1:8123"):
        lecturer = TestClient(application, base_url="http://127.0.0.1:8123")
        assert lecturer.get("/").status_code == 200
        made = ok(lecturer.post("/api/classes", json={"name": "room 101"}), 201)
        room_ = ok(lecturer.get(f"/api/classes/{made['id']}"))["room"]
        assert room_["join_bases"] == ["http://10.0.0.5:8123", "http://192.168.1.20:8123"]
        assert room_["listening"] == "0.0.0.0:8123"
        # the QR code a phone scans carries a reachable address and the code, never 127.0.0.1
        qr = lecturer.get(f"/api/classes/{made['id']}/qr.svg").text
        assert qr == qr_of(f"http://10.0.0.5:8123/class?code={made['code']}")
        # opened at a reachable address, the page's own address is the one to scan
        token = lecturer.cookies.get("convscope_workspace")
        there = TestClient(application, base_url="http://10.0.0.5:8123", headers={"Authorization": f"Bearer {token}"})
        assert there.get(f"/api/classes/{made['id']}/qr.svg").text == qr
    listening_locally = make_app(tmp_path / "loopback")
    with TestClient(listening_locally):
        lecturer = browser(listening_locally)
        made = ok(lecturer.post("/api/classes", json={"name": "room 102"}), 201)
        assert ok(lecturer.get(f"/api/classes/{made['id']}"))["room"]["join_bases"] == []


def test_the_shared_reading_of_a_room_rereads_only_members_whose_jobs_changed(app, room):
    from app.services.classes import RoomReading

    made, lecturer, ada, bea = room
    store = app.state.store
    reading = RoomReading(made["id"])
    jobs = lambda state, name: next(m for m in state["members"] if m["name"] == name)["jobs"]  # noqa: E731
    assert jobs(reading.read(store)[0], "Bea") == []
    calls = []
    original = store.workspace_jobs
    store.workspace_jobs = lambda workspace: calls.append(workspace) or original(workspace)
    try:
        assert jobs(reading.read(store)[0], "Bea") == [] and calls == []  # nothing changed: nothing re-read
        job = ok(bea.post("/api/models", json={"architecture": TINY, "train_size": 64}), 202)
        calls.clear()
        assert [j["status"] for j in jobs(reading.read(store)[0], "Bea")] == ["queued"] and len(calls) == 1
        run_jobs(app.state.settings, store)
        calls.clear()
        state = reading.read(store)[0]
        assert [(j["id"], j["status"]) for j in jobs(state, "Bea")] == [(job["id"], "done")]
        assert state["counts"]["with_model"] == 1 and len(calls) == 1
        copy = ok(ada.post("/api/models/lenet/copy"), 201)  # made done, never active: the next full reading
        seen = [any(j["id"] == copy["id"] for j in jobs(reading.read(store)[0], "Student 1")) for _ in range(10)]
        assert seen[-1] and not seen[0]
    finally:
        store.workspace_jobs = original
