"""The training service's API in-process: every bad design or bound gets its 4xx in words, and
every model endpoint takes ?model= (shipped ones here; trained ones in tests/jobs)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.jobs.worker import run_jobs
from app.main import create_app
from engine import load_dataset
from engine.architectures import ARCHITECTURES
from tests.api.conftest import ok

TINY = ARCHITECTURES["tiny"]
WIDE = {"type": "conv", "filters": 64, "kernel_size": 5, "padding": 2}  # 64x64x25 products per pixel


@pytest.fixture()
def fresh(tmp_path):
    """An app with its own empty store and no worker: jobs stay queued until a test runs one."""
    settings = Settings(data_dir=tmp_path, max_jobs_per_workspace=2, max_queued_jobs=3)
    with TestClient(create_app(settings)) as client:
        yield client, settings


def with_change(change) -> dict:
    spec = copy.deepcopy(TINY)
    change(spec)
    return spec


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"architecture": ARCHITECTURES["broken"]}, 422, "layer 7 (conv3): a 5x5 kernel does not fit a 2x2 input"),
        (
            {"architecture": with_change(lambda s: s["layers"].insert(0, {"type": "softmax"}))},
            422,
            "unknown layer type",
        ),
        ({"architecture": with_change(lambda s: s["layers"][0].update(filters=2000))}, 422, "at most 500000"),
        (
            {"architecture": with_change(lambda s: s["layers"].insert(0, WIDE) or s["layers"].insert(0, WIDE))},
            422,
            "multiply-adds",
        ),
        ({"architecture": with_change(lambda s: s.update(input=[3, 28, 28]))}, 422, "architecture.input"),
        ({"architecture": with_change(lambda s: s.update(input=[1, 200, 200]))}, 422, "H and W from 8 to 64"),
        (
            {"architecture": with_change(lambda s: (s.update(classes=5), s["layers"][-1].update(units=5)))},
            422,
            "the data set has 10 classes",
        ),
        (
            {"architecture": with_change(lambda s: s["layers"].extend([{"type": "relu"}] * 60))},
            422,
            "at most 64 layers",
        ),
        ({"architecture": TINY, "epochs": 31}, 422, "epochs"),
        ({"architecture": TINY, "epochs": 0}, 422, "epochs"),
        ({"architecture": TINY, "batch_size": 513}, 422, "batch_size"),
        ({"architecture": TINY, "learning_rate": 0}, 422, "learning_rate"),
        ({"architecture": TINY, "learning_rate": 1.5}, 422, "learning_rate"),
        ({"architecture": TINY, "train_size": 7201}, 422, "train_size: the digits training split has 7200 images"),
        ({"architecture": TINY, "dataset": "cifar"}, 422, "dataset"),
        ({"architecture": TINY, "optimizer": "rmsprop"}, 422, "optimizer"),
        ({"architecture": TINY, "name": "x" * 61}, 422, "name"),
        ({"architecture": TINY, "name": "\x00\x07"}, 422, "name must have at least one visible character"),
        ({"architecture": TINY, "colour": "red"}, 422, "colour"),
        ({"architecture": "alexnet"}, 422, "not a ready-made architecture; the names are lenet, tiny"),
        ({}, 422, "architecture"),
    ],
)
def test_bad_designs_and_bounds_get_a_4xx_naming_what_was_wrong(fresh, body, status, message):
    client, _ = fresh
    response = client.post("/api/models", json=body)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


def test_a_bad_layer_is_also_named_in_fields_a_page_can_point_at(fresh):
    client, _ = fresh
    response = client.post("/api/models", json={"architecture": ARCHITECTURES["broken"]})
    assert response.status_code == 422
    assert response.json()["layer"] == {
        "index": 6,
        "number": 7,
        "name": "conv3",
        "reason": "a 5x5 kernel does not fit a 2x2 input: (2 + 2*0 - 1*(5-1) - 1)/1 + 1 = -2",
    }


def test_a_workspace_may_have_two_jobs_and_a_full_queue_says_when_to_retry(fresh):
    client, _ = fresh
    first = client.post("/api/models", json={"architecture": TINY})
    second = client.post("/api/models", json={"architecture": TINY})
    assert (first.status_code, second.status_code) == (202, 202)
    assert (first.json()["position"], second.json()["position"]) == (1, 2)
    assert second.json()["wait_seconds"] >= first.json()["estimate_seconds"] > 0
    third = client.post("/api/models", json={"architecture": TINY})
    assert third.status_code == 429 and "your workspace has 2 jobs queued or running" in third.json()["detail"]
    assert "2 is the most" in third.json()["detail"] and int(third.headers["retry-after"]) > 0
    # another student behind the same address has a workspace of their own; the queue's cap is for all
    neighbour = TestClient(client.app)
    assert neighbour.post("/api/models", json={"architecture": TINY}).status_code == 202
    full = neighbour.post("/api/models", json={"architecture": TINY})
    assert full.status_code == 429 and "the training queue is full (3 jobs waiting, at most 3)" in full.json()["detail"]
    # cancelling a queued job frees the place at once
    cancelled = client.post(f"/api/models/{first.json()['id']}/cancel")
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled"
    assert ok(client.get(f"/api/models/{second.json()['id']}"))["position"] == 1
    assert client.post("/api/models", json={"architecture": TINY}).status_code == 202


def test_unknown_models_are_404_and_unfinished_ones_409(fresh):
    client, settings = fresh
    assert client.get("/api/models/nope").status_code == 404
    assert client.get("/api/models/nope/events").status_code == 404
    assert client.post("/api/models/nope/cancel").status_code == 404
    assert client.post("/api/predict?model=nope", json={"pixels": [[0] * 8] * 8}).status_code == 404
    assert client.post("/api/predict?model=../../etc", json={"pixels": [[0] * 8] * 8}).status_code == 422
    queued = ok(client.post("/api/models", json={"architecture": TINY}), 202)["id"]
    refused = client.post(f"/api/predict?model={queued}", json={"pixels": [[0] * 8] * 8})
    assert refused.status_code == 409 and "queued" in refused.json()["detail"]
    assert client.get(f"/api/model?model={queued}&snapshot=5").status_code == 404
    assert client.get("/api/model?model=lenet&snapshot=0").status_code == 404  # shipped: no snapshots


def test_a_job_run_by_a_worker_is_used_everywhere_and_replayed_from_its_snapshots(fresh):
    client, settings = fresh
    job = {"architecture": TINY, "train_size": 4000, "epochs": 2, "seed": 0}  # a run of its own, made repeatable
    job_id = ok(client.post("/api/models", json=job), 202)["id"]
    assert run_jobs(settings, client.app.state.store) == 1  # what the worker process does
    record = ok(client.get(f"/api/models/{job_id}"))
    assert record["status"] == "done" and record["metrics"]["test_accuracy"] > 0.8
    assert record["test_accuracy"] == record["metrics"]["test_accuracy"]  # one shape with GET /api/models
    assert sum(map(sum, record["metrics"]["confusion"])) == 800
    assert len(record["metrics"]["per_class_accuracy"]) == 10
    assert record["settings"]["train_size"] == 4000 and len(record["snapshots"]) <= 21
    info = ok(client.get(f"/api/model?model={job_id}"))
    assert [layer["name"] for layer in info["layers"]] == ["conv1", "pool1", "fc1"] and info["id"] == job_id
    weights = ok(client.get(f"/api/model/layers/conv1/weights?model={job_id}&snapshot=0"))
    assert weights["weight_shape"] == [4, 1, 5, 5]
    final = ok(client.get(f"/api/model/layers/conv1/weights?model={job_id}"))
    assert final["weight"] != weights["weight"]  # the filters learned something
    assert client.post(f"/api/models/{job_id}/cancel").status_code == 409


def test_the_clothing_model_classifies_a_test_image_and_names_its_classes(client):
    test = load_dataset("fashion", "test")
    index = int(np.flatnonzero(test.labels == 1)[0])  # a trouser
    response = client.post("/api/predict?model=fashion", json={"pixels": test.images[index].tolist()})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "fashion" and body["label"] == "Trouser" and body["labels"][9] == "Ankle boot"
    assert np.array(body["input"]).shape == (28, 28)


def test_a_frame_is_the_networks_input_run_as_is(client):
    digit = load_dataset("digits", "test")
    frame = np.pad(digit.images[0] / 255.0, 2)
    response = client.post("/api/predict", json={"frame": frame.tolist()})
    assert response.status_code == 200 and response.json()["digit"] == int(digit.labels[0])
    np.testing.assert_allclose(response.json()["input"], frame, atol=5e-5)
    wrong = client.post("/api/predict", json={"frame": np.zeros((28, 28)).tolist()})
    assert wrong.status_code == 422 and "this model's input is 1x32x32" in wrong.json()["detail"]
    out_of_range = client.post("/api/predict", json={"frame": (frame * 2).tolist()})
    assert out_of_range.status_code == 422 and "0..1" in out_of_range.json()["detail"]
    both = client.post("/api/predict", json={"frame": frame.tolist(), "pixels": [[0] * 8] * 8})
    assert both.status_code == 422


def test_the_model_list_starts_with_the_shipped_models(client):
    models = ok(client.get("/api/models"))
    assert [(m["id"], m["kind"], m["dataset"]) for m in models[:2]] == [
        ("lenet", "shipped", "digits"),
        ("fashion", "shipped", "fashion"),
    ]
    assert models[1]["test_accuracy"] >= 0.89
    shipped = ok(client.get("/api/models/fashion"))
    assert shipped["status"] == "done" and shipped["classes"][0] == "T-shirt/top"
    download = client.get("/api/models/lenet/weights")
    assert download.status_code == 200 and download.headers["content-disposition"].endswith('lenet.npz"')


def test_the_design_pages_layer_types_come_from_the_engine(client):
    catalogue = ok(client.get("/api/architectures/layers"))
    assert catalogue["types"][:4] == ["conv", "maxpool", "avgpool", "linear"] and "dropout" in catalogue["types"]
    assert catalogue["fields"]["conv"]["filters"] is None  # required
    assert catalogue["fields"]["maxpool"]["stride"] is None  # follows the kernel size
    assert catalogue["new_layer"]["conv"] == {
        "filters": 8,
        "kernel_size": 3,
        "stride": 1,
        "padding": 0,
        "dilation": 1,
        "padding_mode": "zeros",
        "groups": 1,
    }
    assert catalogue["padding_modes"] == ["zeros", "reflect", "replicate", "circular", "partial"]
    # every type of the registry, each with its words; the merges take "inputs"
    assert {"batchnorm", "add", "concat", "globalavgpool", "pad", "leakyrelu", "hardswish"} <= set(catalogue["types"])
    assert all(catalogue["words"][t] for t in catalogue["types"]) and catalogue["merges"] == ["add", "concat"]


def test_a_block_goes_after_the_last_maps_with_its_shapes_worked_out(client):
    # LeNet's last maps are 16 x 5 x 5: a residual block of 32 filters at stride 2 halves them and so
    # projects its shortcut (a 1x1 conv and BatchNorm), before the flatten and the linear head
    grown = ok(client.post("/api/architectures/blocks", json={"architecture": "lenet", "filters": 32, "stride": 2}))
    assert grown["added"] == [
        "block1_conv1", "block1_bn1", "block1_conv2", "block1_bn2", "block1_proj", "block1_proj_bn", "block1"
    ]  # fmt: skip
    merge = next(layer for layer in grown["architecture"]["layers"] if layer.get("name") == "block1")
    assert merge == {"type": "add", "inputs": ["block1_bn2", "block1_proj_bn"], "name": "block1"}
    check = ok(client.post("/api/architectures/check", json={"architecture": grown["architecture"]}))
    rows = {row["name"]: row for row in check["layers"]}
    assert rows["block1_conv1"]["output_shape"] == [32, 3, 3] and rows["block1_proj"]["inputs"] == ["pool2"]
    assert rows["block1_proj"]["parameters"] == 32 * (16 * 1 * 1 + 1)
    separable_request = {"architecture": grown["architecture"], "block": "separable", "filters": 64}
    separable = ok(client.post("/api/architectures/blocks", json=separable_request))
    assert separable["added"] == ["sep1_dw", "sep1_dw_bn", "sep1_pw", "sep1_pw_bn"]
    wrong = client.post("/api/architectures/blocks", json={"architecture": "alexnet"})
    assert wrong.status_code == 422 and "lenet" in wrong.json()["detail"]
    flat = {"input": [1, 28, 28], "classes": 10, "layers": [{"type": "flatten"}, {"type": "linear", "units": 10}]}
    refused = client.post("/api/architectures/blocks", json={"architecture": flat})
    assert refused.status_code == 422 and "no layer of maps" in refused.json()["detail"]


def test_a_ready_made_architecture_may_be_named_instead_of_spelled_out(fresh):
    client, _ = fresh
    job = ok(client.post("/api/models", json={"architecture": "tiny", "train_size": 100}), 202)
    record = ok(client.get(f"/api/models/{job['id']}"))
    assert record["architecture"] == ARCHITECTURES["tiny"] and record["test_accuracy"] is None


def test_free_workspaces_from_one_address_share_its_training_time(tmp_path):
    settings = Settings(data_dir=tmp_path, max_queued_seconds_per_client=30)
    with TestClient(create_app(settings)) as first:
        job = {"architecture": ARCHITECTURES["lenet"], "epochs": 2}
        answers = [first.post("/api/models", json=job)]
        while answers[-1].status_code == 202 and len(answers) < 10:
            answers.append(TestClient(first.app).post("/api/models", json=job))  # another free workspace
    each = answers[0].json()["estimate_seconds"]
    assert [a.status_code for a in answers[:-1]] == [202] * int(30 // each) and answers[-1].status_code == 429
    refused = answers[-1].json()["detail"]
    assert f"your address has {int(30 // each) * each:,.0f} s of training" in refused and "30 s is the most" in refused
