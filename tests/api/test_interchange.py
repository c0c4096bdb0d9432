"""Your own model in, every model out, through the API: POST /api/models/import and
GET /api/models/{id}/export, with the workspace rules every stored model follows."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.jobs.worker import run_jobs
from app.main import create_app
from engine.architectures import ARCHITECTURES
from engine.onnx_import import check_inputs
from tests.api.conftest import browser, ok
from tests.onnx_collection import COLLECTION
from tests.onnx_files import Builder, reference_logits, small_cnn

pytest.importorskip("onnxruntime")


@pytest.fixture()
def app(tmp_path):
    settings = Settings(data_dir=tmp_path, import_max_bytes=400_000, max_models_per_workspace=6)
    application = create_app(settings)
    with TestClient(application):
        yield application


def upload(client: TestClient, data: bytes, **form: str):
    return client.post("/api/models/import", files={"file": ("my_cnn.onnx", data)}, data=form)


def test_an_imported_model_joins_the_workspace_with_its_report_and_runs_on_every_page(app):
    me = browser(app)
    answer = ok(upload(me, small_cnn(), labels=json.dumps(list("abcde")), preprocess="picture"), 201)
    assert answer["name"] == "my_cnn" and answer["labels"] == list("abcde") and answer["preprocess"] == "picture"
    assert answer["spec"]["input"] == [1, 8, 8] and answer["parameters"] == 40 + 222 + 125
    assert any("folded into conv1" in line for line in answer["report"])
    listed = {m["id"]: m for m in ok(me.get("/api/models"))}
    assert listed[answer["id"]]["kind"] == "imported" and listed[answer["id"]]["group"] == "yours"
    # the engine's numbers, kept at import, are onnxruntime's
    probabilities = np.exp(answer["check_logits"]) / np.exp(answer["check_logits"]).sum(1, keepdims=True)
    np.testing.assert_allclose(probabilities, reference_logits(small_cnn(), check_inputs((1, 8, 8))), rtol=1e-4)
    model = answer["id"]
    drawing = {"pixels": [[0] * 8] * 3 + [[0, 0, 255, 255, 255, 255, 0, 0]] * 2 + [[0] * 8] * 3}
    prediction = ok(me.post(f"/api/predict?model={model}&activations=true", json=drawing))
    assert prediction["labels"] == list("abcde") and [layer["name"] for layer in prediction["layers"]][0] == "conv1"
    ok(me.post(f"/api/explain?model={model}", json=drawing))
    card = ok(me.get(f"/api/models/{model}/units/conv1/0"))
    assert card["top"] == [] and "need a data set" in card["note"]
    refusal = me.get(f"/api/models/{model}/embedding")
    assert refusal.status_code == 409 and "dataset=digits" in refusal.json()["detail"]
    # another workspace never sees it
    assert browser(app).get(f"/api/models/{model}/export").status_code == 404


def test_a_model_imported_with_a_data_set_is_tested_on_it_and_gets_its_labels(app):
    me = browser(app)
    lenet = me.get("/api/models/lenet/export?format=onnx").content
    answer = ok(upload(me, lenet, dataset="digits"), 201)
    assert answer["test_accuracy"] == pytest.approx(0.98875, abs=0.002)
    assert answer["labels"] == [str(d) for d in range(10)] and answer["preprocess"] == "digit"
    card = ok(me.get(f"/api/models/{answer['id']}/units/fc3/7"))
    assert len(card["top"]) == 9 and card["note"] is None
    wrong = upload(me, small_cnn(), dataset="digits")
    assert wrong.status_code == 422 and "10 classes but the model gives 5 scores" in wrong.json()["detail"]


@pytest.mark.parametrize(
    ("form", "words"),
    [
        ({"labels": '["a", "b"]'}, "a list of 5 class names"),
        ({"labels": "a, b"}, "labels: not JSON"),
        ({"dataset": "cifar"}, "'cifar' is not one"),
        ({"preprocess": "sharpen"}, "preprocess"),
        ({"input_range": "0..100"}, "input_range"),
        ({"mean": "half"}, "mean: 'half' is not numbers"),
        ({"mean": "0.5, 0.5"}, "mean: 2 numbers for a model of 1 channels"),
        ({"std": "0"}, "std: [0.0]; each must be a number from 0.0001"),
    ],
)
def test_what_comes_with_the_file_is_checked(app, form, words):
    response = upload(browser(app), small_cnn(), **form)
    assert response.status_code == 422 and words in response.text


def test_hostile_files_are_4xx_with_a_message(app):
    me = browser(app)
    for data in (b"", b"not onnx at all" * 100, small_cnn()[:300]):
        response = upload(me, data)
        assert response.status_code == 422 and "ONNX" in response.json()["detail"]
    b = Builder((1, 9, 9))
    b.conv(3, 3, channels=1)
    b.op("Softplus")
    b.op("Flatten", axis=1)
    b.gemm(4, 147)
    response = upload(me, b.bytes())
    assert response.status_code == 422 and "(Softplus) is not supported" in response.json()["detail"]
    big = upload(me, b"\0" * 500_000)
    assert big.status_code == 413 and "400000" in big.json()["detail"]


def test_every_kind_of_model_exports_to_onnx_and_pytorch(app):
    me = browser(app)
    job = ok(me.post("/api/models", json={"architecture": ARCHITECTURES["tiny"], "train_size": 600}), 202)
    run_jobs(app.state.settings, app.state.store)
    edit = ok(me.post("/api/models/lenet/edit", json={"edits": [{"op": "zero", "layer": "conv1", "unit": 2}]}), 201)
    imported = ok(upload(me, small_cnn()), 201)
    for model in ("lenet", "fashion", job["id"], edit["id"], imported["id"]):
        exported = me.get(f"/api/models/{model}/export?format=onnx")
        assert exported.status_code == 200 and exported.headers["content-disposition"].endswith('.onnx"')
        onnx.checker.check_model(onnx.load_from_string(exported.content))
        weights = me.get(f"/api/models/{model}/weights").content
        network = _load(weights)
        x = check_inputs(network.input_shape)
        np.testing.assert_allclose(reference_logits(exported.content, x), network.forward(x), rtol=1e-4, atol=1e-4)
        source = me.get(f"/api/models/{model}/export?format=pytorch")
        assert source.headers["content-type"].startswith("text/x-python")
        assert "class Net(nn.Module)" in source.text and "def load(path)" in source.text
    assert me.get("/api/models/lenet/export?format=keras").status_code == 422


def _load(weights: bytes):
    import io

    from engine.network import load_network

    return load_network(io.BytesIO(weights))


def test_an_import_takes_its_preparation_from_the_form_or_the_file_and_keeps_it(app):
    me = browser(app)
    answer = ok(upload(me, small_cnn(), input_range="0..255", mean="0.5", std="[0.25]"), 201)
    assert answer["preparation"] == {"input_range": "0..255", "mean": [0.5], "std": [0.25]}
    assert answer["spec"]["layers"][0] == {
        "type": "normalize",
        "name": "preparation",
        "mean": [0.5 / 255],
        "std": [0.25 / 255],
    }
    assert answer["outputs"] == "softmax" and answer["file_input"] == {
        "layout": "NCHW",
        "dtype": "float32",
        "batch": None,
    }
    x = check_inputs((1, 8, 8))
    probabilities = np.exp(answer["check_logits"]) / np.exp(answer["check_logits"]).sum(1, keepdims=True)
    np.testing.assert_allclose(
        probabilities, reference_logits(small_cnn(), (x * 255 - 0.5) / 0.25), rtol=1e-3, atol=1e-6
    )
    record = ok(me.get(f"/api/models/{answer['id']}"))
    assert record["settings"]["preparation"] == answer["preparation"]
    from_file = ok(upload(me, COLLECTION["normalised_mnist_props"]()), 201)
    assert from_file["preparation"] == {"input_range": "0..1", "mean": [0.1307], "std": [0.3081]}


def test_real_exporters_files_import_through_the_api_and_show_their_maps_and_saliency(app):
    me = browser(app)
    for name in ("keras_mobilenet_tf2onnx", "binary_sigmoid_nonsquare", "resnet_opset17"):
        answer = ok(upload(me, COLLECTION[name]()), 201)
        c, h, w = answer["spec"]["input"]
        frame = np.random.default_rng(0).random((c, h, w)).round(3).tolist()
        prediction = ok(me.post(f"/api/predict?model={answer['id']}&activations=true", json={"frame": frame}))
        assert len(prediction["layers"]) >= 3 and prediction["layers"][0]["shape"][0] >= 1
        assert np.isclose(sum(prediction["probabilities"]), 1)
        saliency = ok(me.post(f"/api/explain?model={answer['id']}", json={"frame": frame, "methods": ["saliency"]}))
        assert np.asarray(saliency["saliency"]).shape[-2:] == (h, w)


def test_an_imported_model_past_the_servers_bounds_is_refused_with_the_figures(tmp_path):
    settings = Settings(data_dir=tmp_path, max_request_bytes=2 * 1024 * 1024, import_max_multiply_adds=50_000_000)
    with TestClient(create_app(settings)) as client:
        me = browser(client.app)
        refused = upload(me, COLLECTION["resnet_opset17"]())
        assert refused.status_code == 422
        assert "showing every layer's maps for one picture takes" in refused.json()["detail"]
        b = Builder((1, 400, 40))
        b.conv(1, 3, channels=1)
        b.op("Flatten", axis=1)
        b.gemm(2, 398 * 38)
        wide = upload(me, b.bytes())
        assert wide.status_code == 422 and "sides from 8 to 384" in wide.json()["detail"]
