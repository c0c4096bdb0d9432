"""A network with a skip connection, BatchNorm and a depthwise conv, trained in the app, on every page's
route: predictions with every layer's maps, the five explanations (Grad-CAM on each conv), unit cards, the
class map and its neighbours, surgery, adversarial examples, ONNX and PyTorch export and an ONNX import of
its own export."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.jobs.worker import run_jobs
from app.main import create_app
from tests.api.conftest import browser, ok

GRAPH = {
    "input": [1, 28, 28],
    "classes": 10,
    "layers": [
        {"type": "conv", "filters": 6, "kernel_size": 3, "padding": 1, "stride": 2},
        {"type": "batchnorm"},
        {"type": "relu"},
        {"type": "conv", "filters": 6, "kernel_size": 3, "padding": 1, "groups": 6, "name": "depthwise"},
        {"type": "batchnorm"},
        {"type": "hardswish"},
        {"type": "add", "inputs": ["bn2", "bn1"]},
        {"type": "maxpool", "kernel_size": 2},
        {"type": "flatten"},
        {"type": "linear", "units": 10},
    ],
}
STROKE = {"pixels": [[0] * 28] * 8 + [[0] * 12 + [255] * 4 + [0] * 12] * 12 + [[0] * 28] * 8}


@pytest.fixture(scope="module")
def trained():
    import tempfile
    from pathlib import Path

    settings = Settings(data_dir=Path(tempfile.mkdtemp()))
    app = create_app(settings)
    with TestClient(app):
        me = browser(app)
        job = ok(me.post("/api/models", json={"architecture": GRAPH, "train_size": 1200, "epochs": 2}), 202)
        run_jobs(settings, app.state.store)
        model = ok(me.get(f"/api/models/{job['id']}"))
        assert model["status"] == "done", model["message"]
        yield app, me, job["id"], model


def test_the_graph_model_trains_and_describes_its_branches(trained):
    _, me, model_id, model = trained
    assert model["test_accuracy"] > 0.5
    add = next(row for row in model["layers"] if row["name"] == "add1")
    assert add["inputs"] == ["bn2", "bn1"] and add["draw"] == "merge"
    assert [row["name"] for row in model["layers"]] == [
        "input",
        "conv1",
        "bn1",
        "depthwise",
        "bn2",
        "add1",
        "pool1",
        "fc1",
    ]


def test_predictions_show_every_layers_maps_and_the_five_explanations_run(trained):
    _, me, model_id, _ = trained
    guess = ok(me.post(f"/api/predict?model={model_id}&activations=true", json=STROKE))
    assert [layer["name"] for layer in guess["layers"]] == ["conv1", "bn1", "depthwise", "bn2", "add1", "pool1", "fc1"]
    explained = ok(me.post(f"/api/explain?model={model_id}", json=STROKE))
    assert set(explained["gradcam"]) == {"conv1", "depthwise"}  # every conv, the depthwise one too
    completeness = explained["integrated_gradients"]["completeness"]
    assert completeness["sum"] == pytest.approx(completeness["logit_difference"], rel=0.05, abs=0.05)
    attack = ok(me.post(f"/api/adversarial?model={model_id}", json={**STROKE, "epsilon": 0.3}))
    assert {layer["name"] for layer in attack["layers"]} >= {"bn1", "add1"}


def test_the_learned_views_and_surgery_work_on_the_graph(trained):
    _, me, model_id, _ = trained
    for layer, unit in (("bn1", 2), ("add1", 0), ("depthwise", 5), ("fc1", 3)):
        card = ok(me.get(f"/api/models/{model_id}/units/{layer}/{unit}"))
        assert len(card["top"]) == 9 and card["kind"] in ("norm", "merge", "conv", "linear")
    assert len(ok(me.get(f"/api/models/{model_id}/embedding"))["points"]) > 100
    assert len(ok(me.post(f"/api/models/{model_id}/neighbours", json={**STROKE, "k": 4}))["neighbours"]) == 4
    edited = ok(
        me.post(f"/api/models/{model_id}/edit", json={"edits": [{"op": "zero", "layer": "depthwise", "unit": 1}]}), 201
    )
    assert edited["accuracy_after"] is not None


def test_training_replays_and_a_challenge_entry_take_the_graph(trained):
    app, me, model_id, model = trained
    first = ok(me.get(f"/api/model/layers/depthwise/weights?model={model_id}&snapshot=0"))
    last = ok(me.get(f"/api/model/layers/depthwise/weights?model={model_id}"))
    assert first["weight_shape"] == [6, 1, 3, 3] and first["weight"] != last["weight"]  # one filter a channel
    replayed = ok(me.post(f"/api/predict?model={model_id}&snapshot=0&activations=true", json=STROKE))
    assert [layer["name"] for layer in replayed["layers"]][-3:] == ["add1", "pool1", "fc1"]
    lecturer = browser(app)
    made = ok(lecturer.post("/api/classes", json={"name": "ResNets"}), 201)
    ok(me.post("/api/classes/join", json={"code": made["code"], "name": "Ada"}))
    ok(lecturer.put(f"/api/classes/{made['id']}/challenge", json={"dataset": "digits", "max_parameters": 10_000}))
    entry = ok(me.post(f"/api/classes/{made['id']}/entries", json={"model": model_id}), 201)
    board = ok(lecturer.get(f"/api/classes/{made['id']}/leaderboard"))["entries"]
    assert board[0]["score"] == entry["score"] > 0.3 and board[0]["parameters"] == model["parameters"]
    assert board[0]["layers"] == "conv 6@3x3 → bn → conv 6@3x3/6 → bn → add → maxpool → fc 10"  # /6: groups


def test_the_graph_exports_and_its_onnx_imports_back(trained):
    pytest.importorskip("onnxruntime")
    from engine.onnx_import import check_inputs
    from tests.onnx_files import reference_logits

    _, me, model_id, _ = trained
    exported = me.get(f"/api/models/{model_id}/export?format=onnx").content
    source = me.get(f"/api/models/{model_id}/export?format=pytorch").text
    assert "bn1 = self.bn1(conv1)" in source and "add1 = bn2 + bn1" in source
    back = ok(me.post("/api/models/import", files={"file": ("graph.onnx", exported)}, data={"dataset": "fashion"}), 201)
    weights = me.get(f"/api/models/{model_id}/weights").content
    import io

    from engine.network import load_network

    network = load_network(io.BytesIO(weights))
    x = check_inputs(network.input_shape)
    np.testing.assert_allclose(reference_logits(exported, x), network.forward(x), rtol=1e-4, atol=1e-4)
    assert [row["type"] for row in back["spec"]["layers"]].count("add") == 1
