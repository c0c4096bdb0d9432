"""Unit cards, the class map, nearest training pictures and surgery through the API."""

import numpy as np
import pytest

from engine import load_dataset
from tests.api.conftest import ok

TRAIN = load_dataset("digits", "train")


def test_a_unit_card_shows_its_top_pictures_its_synthetic_picture_and_weights(client):
    card = ok(client.get("/api/models/lenet/units/conv2/5?k=9"))
    assert card["kind"] == "conv" and card["label"] is None and len(card["top"]) == 9
    activations = [t["activation"] for t in card["top"]]
    assert activations == sorted(activations, reverse=True)
    first = card["top"][0]
    y0, x0, y1, x1 = first["box"]
    assert np.array(first["patch"]).shape == (y1 - y0, x1 - x0) == (14, 14)
    assert np.array(card["synthetic"]).shape == (1, 32, 32)
    assert card["synthetic_activation"] > card["mean_activation"]
    assert np.array(card["weights"]["weight"]).shape == (6, 5, 5)


def test_a_unit_of_the_last_layer_is_a_class(client):
    card = ok(client.get("/api/models/lenet/units/fc3/7?k=3"))
    assert card["label"] == "7" and card["kind"] == "linear"
    assert all(t["label"] == 7 for t in card["top"])  # the pictures most "7" are sevens
    assert ok(client.get("/api/models/lenet/units/pool1/0?k=1"))["weights"] is None


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/models/lenet/units/conv9/0", 404),
        ("/api/models/lenet/units/conv1/6", 404),
        ("/api/models/lenet/units/conv1/0?k=0", 422),
        ("/api/models/nosuch/units/conv1/0", 404),
        ("/api/models/nosuch/embedding", 404),
    ],
)
def test_unknown_layers_units_and_models_are_4xx(client, path, status):
    response = client.get(path)
    assert response.status_code == status, response.text
    assert response.json()["detail"]


def test_the_class_map_and_a_training_pictures_neighbours_include_itself(client):
    embedding = ok(client.get("/api/models/lenet/embedding"))
    assert embedding["method"] == "pca" and embedding["layer"] == "fc2"
    assert len(embedding["points"]) == len(embedding["labels"]) == 800
    index = 123
    frame = np.pad(TRAIN.images[index] / 255, 2).tolist()  # exactly what the network saw in training
    body = ok(client.post("/api/models/lenet/neighbours", json={"frame": frame, "k": 4}))
    assert body["neighbours"][0] == {"index": index, "label": int(TRAIN.labels[index]), "distance": 0.0}
    assert len(body["position"]) == 2 and np.array(body["images"]).shape == (4, 28, 28)


def test_switching_off_filters_makes_a_new_model_and_measures_the_damage(client):
    response = client.post(
        "/api/models/lenet/edit", json={"edits": [{"op": "zero", "layer": "conv1", "unit": u} for u in range(6)]}
    )
    body = ok(response, 201)
    assert body["accuracy_before"] >= 0.985 and body["accuracy_after"] < 0.15
    assert len(body["per_class_after"]) == 10
    edited = ok(client.get(f"/api/models/{body['id']}"))
    assert edited["kind"] == "edited" and edited["status"] == "done"
    assert (
        ok(client.post(f"/api/predict?model={body['id']}", json={"pixels": TRAIN.images[0].tolist()}))["model"]
        == body["id"]
    )
    assert ok(client.post("/api/predict", json={"pixels": TRAIN.images[0].tolist()}))["digit"] == int(TRAIN.labels[0])


@pytest.mark.parametrize(
    ("edits", "message"),
    [
        ([{"op": "zero", "layer": "conv1", "unit": 99}], "conv1 has units 0..5"),
        ([{"op": "zero", "layer": "nope", "unit": 0}], "not a layer with weights"),
        ([{"op": "set_filter", "layer": "conv1", "unit": 0, "kernel": [[1, 2], [3, 4]]}], "5x5"),
        ([{"op": "melt", "layer": "conv1"}], "op"),
        ([{"op": "zero", "layer": "conv1", "unit": 0}] * 33, "edits"),
        ([], "edits"),
    ],
)
def test_bad_edits_are_422(client, edits, message):
    response = client.post("/api/models/lenet/edit", json={"edits": edits})
    assert response.status_code == 422 and message in response.json()["detail"]
