"""A server a class shares, in-process: workspaces without accounts, models that belong to the workspace
that made them (404 to everyone else), share links and copies, per-workspace caps, edited names, and the
bounds on what a client can make the server hold."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.jobs.worker import housekeeping, run_jobs
from app.main import create_app
from app.services.workspaces import COOKIE
from engine.architectures import ARCHITECTURES
from engine.spec import multiply_adds, plan_network
from tests.api.conftest import at_once, ok
from tests.api.conftest import browser as student

TINY = ARCHITECTURES["tiny"]
PIXELS = {"pixels": [[0] * 8] * 2 + [[0, 0, 0, 255, 255, 0, 0, 0]] * 4 + [[0] * 8] * 2}


@pytest.fixture()
def app(tmp_path):
    settings = Settings(data_dir=tmp_path, max_edits_per_hour=4, max_models_per_workspace=6)
    application = create_app(settings)
    with TestClient(application):  # runs the lifespan once; each test opens the clients it needs
        yield application


def trained(app, client: TestClient) -> str:
    """A finished tiny model in the client's workspace (the worker's work done in-process)."""
    job = ok(client.post("/api/models", json={"architecture": TINY, "train_size": 600, "name": "mine"}), 202)
    run_jobs(app.state.settings, app.state.store)
    assert ok(client.get(f"/api/models/{job['id']}"))["status"] == "done"
    return job["id"]


def test_a_first_visit_gets_a_workspace_in_an_httponly_samesite_cookie(app):
    client = TestClient(app)
    response = client.get("/")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie
    token = cookie.split(";")[0].split("=", 1)[1]
    assert len(token) == 32 and int(token, 16) >= 0  # 128 random bits, as hex
    again = client.get("/")
    assert "set-cookie" not in again.headers  # the same workspace on the next visit
    secure = TestClient(app, base_url="https://testserver").get("/")
    assert "Secure" in secure.headers["set-cookie"]


def test_the_workspace_says_what_it_holds_and_its_limits(app):
    client = student(app)
    body = ok(client.get("/api/workspace"))
    assert body["id"].startswith("w") and body["name"].startswith("Workspace ")
    assert (body["models"], body["datasets"], body["running"], body["queued"]) == ([], [], 0, 0)
    assert body["limits"]["models"] == 6 and body["limits"]["edits_per_hour"] == 4
    model_id = trained(app, client)
    made = ok(client.post("/api/datasets", json={"name": "shapes", "classes": ["check", "cross"]}), 201)
    body = ok(client.get("/api/workspace"))
    assert [m["id"] for m in body["models"]] == [model_id] and body["bytes"] > 0
    assert [d["id"] for d in body["datasets"]] == [made["id"]]
    quotas = {row["name"]: (row["used"], row["limit"]) for row in body["quotas"]}
    assert quotas["models"] == (1, 6) and quotas["datasets"] == (1, 10) and quotas["classes"] == (0, 20)
    assert quotas["streams"] == (None, 8) and set(quotas) == set(body["limits"])


def test_every_counted_quota_refuses_one_past_its_limit_in_the_same_words(tmp_path):
    settings = Settings(data_dir=tmp_path, max_datasets_per_workspace=1, max_classes_per_workspace=1)
    with TestClient(create_app(settings)) as client:
        me = student(client.app)
        ok(me.post("/api/datasets", json={"name": "one", "classes": ["a", "b"]}), 201)
        second = me.post("/api/datasets", json={"name": "two", "classes": ["a", "b"]})
        assert second.status_code == 429
        assert (
            second.json()["detail"]
            == "own data sets: your workspace has 1, the most one may have is 1; delete one first"
        )
        ok(me.post("/api/classes", json={"name": "first"}), 201)
        again = me.post("/api/classes", json={"name": "second"})
        assert (
            again.status_code == 429
            and "classes it is in: your workspace has 1, the most one may have is 1" in again.json()["detail"]
        )


def test_a_script_makes_a_workspace_and_uses_it_as_a_bearer_token(app):
    script = TestClient(app)
    made = ok(script.post("/api/workspace"), 201)
    assert made["id"].startswith("w") and len(made["token"]) == 32
    bearer = {"Authorization": f"Bearer {made['token']}"}
    assert ok(script.get("/api/workspace", headers=bearer))["id"] == made["id"]
    unknown = script.get("/api/workspace", headers={"Authorization": "Bearer " + "0" * 32})
    assert unknown.status_code == 401 and "POST /api/workspace" in unknown.json()["detail"]


def test_creating_without_a_workspace_returns_a_new_ones_token(app):
    script = TestClient(app)
    response = script.post("/api/models/lenet/edit", json={"edits": [{"op": "zero", "layer": "conv1", "unit": 3}]})
    assert response.status_code == 201, response.text
    token = response.headers["x-workspace-token"]
    assert f"{COOKIE}={token}" in response.headers["set-cookie"]
    plain = TestClient(app)  # no cookie jar: only the token says whose it is
    edited = response.json()["id"]
    assert plain.get(f"/api/models/{edited}").status_code == 404
    mine = ok(plain.get(f"/api/models/{edited}", headers={"Authorization": f"Bearer {token}"}))
    assert mine["name"] == "LeNet, conv1 filter 3 switched off" and mine["kind"] == "edited"


def test_the_shipped_models_need_no_workspace(app):
    plain = TestClient(app)
    assert plain.post("/api/predict", json=PIXELS).status_code == 200
    assert plain.get("/api/model?model=fashion").status_code == 200
    assert plain.get("/api/models/lenet/units/conv1/0?k=2").status_code == 200
    assert [m["group"] for m in ok(plain.get("/api/models"))] == ["shipped", "shipped"]
    assert "set-cookie" not in plain.post("/api/predict", json=PIXELS).headers


def test_another_workspaces_model_is_404_on_every_route(app):
    owner, other = student(app), student(app)
    model_id = trained(app, owner)
    edit = {"edits": [{"op": "zero", "layer": "conv1", "unit": 0}]}
    routes = [
        ("get", f"/api/models/{model_id}", None),
        ("get", f"/api/models/{model_id}/events", None),
        ("get", f"/api/models/{model_id}/weights", None),
        ("get", f"/api/model?model={model_id}", None),
        ("get", f"/api/model/layers/conv1/weights?model={model_id}", None),
        ("get", f"/api/models/{model_id}/units/conv1/0", None),
        ("get", f"/api/models/{model_id}/embedding", None),
        ("post", f"/api/models/{model_id}/neighbours", PIXELS),
        ("post", f"/api/predict?model={model_id}", PIXELS),
        ("post", f"/api/explain?model={model_id}", PIXELS),
        ("post", f"/api/adversarial?model={model_id}", PIXELS),
        ("post", f"/api/models/{model_id}/cancel", None),
        ("post", f"/api/models/{model_id}/share", None),
        ("post", f"/api/models/{model_id}/copy", None),
        ("post", f"/api/models/{model_id}/edit", edit),
    ]
    for method, path, body in routes:
        theirs = getattr(other, method)(path, **({"json": body} if body is not None else {}))
        assert theirs.status_code == 404, (path, theirs.status_code, theirs.text)
        assert model_id in theirs.json()["detail"] or "no training job" in theirs.json()["detail"], path
    assert model_id not in [m["id"] for m in ok(other.get("/api/models"))]
    assert owner.post(f"/api/predict?model={model_id}", json=PIXELS).status_code == 200
    assert model_id in [m["id"] for m in ok(owner.get("/api/models")) if m["group"] == "yours"]


def test_a_share_link_lends_a_model_read_only_and_a_copy_makes_it_yours(app):
    owner, friend = student(app), student(app)
    model_id = trained(app, owner)
    link = ok(owner.post(f"/api/models/{model_id}/share"))
    share = link["share_id"]
    assert share.startswith("s") and len(share) >= 20 and link["url"] == f"/?model={share}"
    assert link["train_url"] == f"/train?model={share}"
    assert ok(owner.post(f"/api/models/{model_id}/share"))["share_id"] == share  # one link per model

    seen = ok(friend.get(f"/api/models/{share}"))
    assert seen["id"] == share and seen["name"] == "mine" and seen["status"] == "done"
    assert ok(friend.post(f"/api/predict?model={share}", json=PIXELS))["model"] == share
    assert friend.get(f"/api/models/{share}/weights").content[:2] == b"PK"
    listed = [(m["id"], m["group"]) for m in ok(friend.get("/api/models"))]
    assert (share, "shared") in listed and model_id not in [i for i, _ in listed]
    # read-only: the friend can neither cancel, share on, nor reach the original id
    assert friend.post(f"/api/models/{share}/share").status_code == 404
    assert friend.get(f"/api/models/{model_id}").status_code == 404

    copy = ok(friend.post(f"/api/models/{share}/copy"), 201)
    assert copy["copied_from"] == share and copy["name"] == "mine (copy)"
    mine = ok(friend.get(f"/api/models/{copy['id']}"))
    assert mine["status"] == "done" and mine["metrics"]["test_accuracy"] == seen["metrics"]["test_accuracy"]
    assert owner.get(f"/api/models/{copy['id']}").status_code == 404  # the copy is the friend's alone


def test_edited_models_are_named_after_the_change_and_bounded(app):
    client = student(app)
    first = ok(
        client.post("/api/models/lenet/edit", json={"edits": [{"op": "zero", "layer": "conv1", "unit": 3}]}), 201
    )
    assert first["name"] == "LeNet, conv1 filter 3 switched off"
    listed = {m["id"]: m for m in ok(client.get("/api/models"))}
    assert listed[first["id"]]["base"] == "lenet"  # the picker opens it to undo the edit
    chain = first["id"]
    for unit in range(4):
        edit = {"edits": [{"op": "zero", "layer": "fc1", "unit": unit}] * 3}
        response = client.post(f"/api/models/{chain}/edit", json=edit)
        if response.status_code == 429:
            break
        chain = ok(response, 201)["id"]
        assert len(response.json()["name"]) <= 60 and response.json()["name"].startswith("LeNet, conv1 filter 3")
    assert response.status_code == 429 and "4 edited models in the last hour" in response.json()["detail"]


@pytest.mark.parametrize(
    ("edits", "message"),
    [
        ([{"op": "scale", "layer": "fc3", "factor": 100}] * 32, "too large for a float"),
        ([{"op": "set_filter", "layer": "conv1", "unit": 0, "kernel": [[1, 2], [3]]}], "kernel must be a 5x5 grid"),
    ],
)
def test_edits_that_would_break_the_weights_are_422(app, edits, message):
    response = student(app).post("/api/models/lenet/edit", json={"edits": edits})
    assert response.status_code == 422 and message in response.json()["detail"]


def test_names_lose_their_control_characters(app):
    client = student(app)
    body = {"edits": [{"op": "zero", "layer": "conv1", "unit": 1}], "name": "a\x1b[31mred\x07 name"}
    edited = ok(client.post("/api/models/lenet/edit", json=body), 201)
    assert edited["name"] == "a [31mred name"


def test_a_workspace_has_a_bounded_number_of_stored_models(app):
    client = student(app)
    for n in range(4):  # 4 edits (the hourly cap), then copies until the 6 models are stored
        ok(client.post("/api/models/lenet/edit", json={"edits": [{"op": "zero", "layer": "conv1", "unit": n}]}), 201)
    ok(client.post("/api/models/lenet/copy"), 201)
    ok(client.post("/api/models/fashion/copy"), 201)
    refused = client.post("/api/models/lenet/copy")
    assert (
        refused.status_code == 429
        and "stored models: your workspace has 6, the most one may have is 6" in refused.json()["detail"]
    )


def test_a_design_whose_activations_do_not_fit_memory_is_422_naming_the_layer(app):
    wide = {"input": [1, 28, 28], "classes": 10, "layers": [{"type": "conv", "filters": 25000, "kernel_size": 1}]}
    wide["layers"] += [{"type": "maxpool", "kernel_size": 28}, {"type": "flatten"}, {"type": "linear", "units": 10}]
    response = student(app).post("/api/models", json={"architecture": wide})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "conv1: 25,000 maps of 28x28 are 75 MB per picture" in detail and "the limit is" in detail


def test_a_job_estimated_past_the_time_limit_is_refused_up_front_with_the_figure(tmp_path):
    with TestClient(create_app(Settings(data_dir=tmp_path, max_training_seconds=5))) as client:
        response = client.post("/api/models", json={"architecture": ARCHITECTURES["lenet"], "epochs": 30})
    assert response.status_code == 422
    assert "would train for about" in response.json()["detail"] and "5 s a job may take" in response.json()["detail"]


def test_a_fine_tune_with_frozen_convolutions_is_estimated_at_its_shorter_backward_pass(app):
    client = student(app)
    plans = plan_network(ARCHITECTURES["lenet"])
    estimates = {}
    for frozen in ([], ["conv1", "conv2"]):
        body = {"dataset": "digits", "start_from": "lenet", "freeze": frozen, "epochs": 2, "train_size": 1000}
        estimates[len(frozen)] = ok(client.post("/api/models", json=body), 202)["estimate_seconds"]
    rate = app.state.settings.training_macs_per_second
    macs = multiply_adds(plans)
    head = multiply_adds([plan for plan in plans if plan.type == "linear"])  # fc1..fc3: where backward stops
    tests = 2 * macs * 800  # a test pass of the 800 held-out digits each epoch
    assert estimates[0] == pytest.approx(1 + (3 * macs * 1000 * 2 + tests) / rate, abs=0.1)
    assert estimates[2] == pytest.approx(1 + ((macs + 2 * head) * 1000 * 2 + tests) / rate, abs=0.1)


def test_a_job_stores_few_bytes_and_compact_events(app):
    client = student(app)
    model_id = trained(app, client)
    record = ok(client.get(f"/api/models/{model_id}"))
    assert 0 < record["bytes"] <= app.state.settings.max_job_bytes
    raw = [data for _, kind, data in app.state.store.events(model_id) if kind == "snapshot"]
    assert raw and all(len(event["filters"]) <= 16 for event in raw)
    # float32 values travel as their short decimal, never as 0.035599999129772186
    longest = max(len(json.dumps(v)) for event in raw for v in np.ravel(event["filters"]).tolist())
    assert longest <= len("-0.1234")
    assert len(json.dumps(raw)) < 100_000


def test_a_model_deleted_by_its_time_to_live_is_gone_at_once(app):
    client = student(app)
    model_id = trained(app, client)
    assert client.post(f"/api/predict?model={model_id}", json=PIXELS).status_code == 200  # now cached
    link = ok(client.post(f"/api/models/{model_id}/share"))["share_id"]
    app.state.settings.model_ttl_days = 1e-9
    try:
        housekeeping(app.state.settings, app.state.store)
    finally:
        app.state.settings.model_ttl_days = 30
    assert client.post(f"/api/predict?model={model_id}", json=PIXELS).status_code == 404
    assert client.get(f"/api/models/{link}").status_code == 404
    assert app.state.store.get_blob(f"{model_id}/model") is None and app.state.store.share(link) is None


def test_a_big_request_on_a_big_model_is_422_with_the_bound(tmp_path):
    settings = Settings(data_dir=tmp_path, max_request_bytes=8 * 1024 * 1024)
    with TestClient(create_app(settings)) as client:
        body = {**PIXELS, "methods": ["integrated_gradients"], "steps": 256}
        response = client.post("/api/explain", json=body)
        assert response.status_code == 422
        assert "integrated gradients would take about" in response.json()["detail"]
        assert "8 MB one request may take" in response.json()["detail"]
        assert client.post("/api/explain", json={**PIXELS, "methods": ["saliency"]}).status_code == 200


# -- cross-site request forgery, from another site or from the same site at another port ---------------


def test_a_change_with_the_cookie_from_another_origin_is_403_and_changes_nothing(app):
    me = student(app)
    model = trained(app, me)
    dataset = ok(me.post("/api/datasets", json={"name": "kept", "classes": ["a", "b"]}), 201)["id"]
    for headers in (
        {"Origin": "http://127.0.0.1:9999"},  # a page on the same host at another port: same site, other origin
        {"Origin": "http://evil.example"},
        {"Origin": "null"},  # a sandboxed frame or a file:// page
        {"Sec-Fetch-Site": "same-site"},  # a browser that sent no Origin but says where the request came from
        {"Sec-Fetch-Site": "cross-site"},
    ):
        refused = me.post(f"/api/models/{model}/copy", headers=headers)
        assert refused.status_code == 403, headers
        assert "not from this server's own pages" in refused.json()["detail"]
        assert me.post(f"/api/models/{model}/cancel", headers=headers).status_code == 403
        assert me.delete(f"/api/datasets/{dataset}", headers=headers).status_code == 403
    assert [m["id"] for m in ok(me.get("/api/models")) if m["group"] == "yours"] == [model]
    assert ok(me.get(f"/api/datasets/{dataset}"))["name"] == "kept"


def test_this_origins_pages_scripts_and_bearer_tokens_are_unaffected(app):
    me = student(app)
    model = trained(app, me)
    assert me.post(f"/api/models/{model}/copy", headers={"Origin": "http://testserver"}).status_code == 201
    assert me.post(f"/api/models/{model}/copy", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 201
    assert me.post(f"/api/models/{model}/copy").status_code == 201  # curl with a cookie jar: no Origin at all
    token = me.cookies[COOKIE]
    script = TestClient(app, headers={"Authorization": f"Bearer {token}", "Origin": "http://127.0.0.1:9999"})
    assert script.post(f"/api/models/{model}/copy").status_code == 201  # no other page can send a bearer token
    assert student(app).post("/api/predict", json=PIXELS, headers={"Origin": "http://evil.example"}).status_code == 200


def test_two_hundred_copies_at_once_store_exactly_the_cap(app):
    me = student(app)
    model = trained(app, me)  # one of the six the workspace may keep
    statuses = at_once(app, me, "POST", f"/api/models/{model}/copy", [None] * 200)
    assert statuses.count(201) == 5 and statuses.count(429) == 195
    assert len([m for m in ok(me.get("/api/models")) if m["group"] == "yours"]) == 6


def test_eighty_edits_at_once_store_exactly_the_edits_an_hour_allows(app):
    me = student(app)
    edit = {"edits": [{"op": "zero", "layer": "conv1", "unit": 3}]}
    statuses = at_once(app, me, "POST", "/api/models/lenet/edit", [edit] * 80)
    assert statuses.count(201) == 4 and set(statuses) <= {201, 429, 503}, statuses  # 503: every compute slot busy
    assert len([m for m in ok(me.get("/api/models")) if m["group"] == "yours"]) == 4


def test_workspaces_made_from_one_address_are_counted_across_processes(tmp_path):
    """Two web processes on one store (as `convscope serve --workers 2` runs them) share one count."""
    settings = Settings(data_dir=tmp_path, max_workspaces_per_address_per_hour=3)
    first, second = create_app(settings), create_app(settings)
    with TestClient(first) as one, TestClient(second) as two:
        made = [client.post("/api/workspace").status_code for client in (one, two, one)]
        refused = two.post("/api/workspace")
    assert made == [201, 201, 201]
    assert refused.status_code == 429 and "3 workspaces were created from your address" in refused.json()["detail"]
