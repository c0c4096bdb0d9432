"""What a network learned: the top pictures of a unit, its synthetic picture, the class map, surgery."""

import numpy as np
import pytest

from engine import load_dataset, load_model, to_network_input
from engine.learned import (
    apply_edits,
    nearest,
    pca_embedding,
    penultimate,
    summarise,
    synthetic_input,
    top_examples,
    unit_value,
)
from engine.train import accuracy_and_confusion


@pytest.fixture(scope="module")
def lenet():
    return load_model()


@pytest.fixture(scope="module")
def test_x():
    test = load_dataset("digits", "test")
    return to_network_input(test.images[:300]), test


@pytest.fixture(scope="module")
def summaries(lenet, test_x):
    return summarise(lenet, test_x[0])


def test_top_pictures_come_in_descending_order_and_each_is_a_forward_pass(lenet, test_x, summaries):
    x, _ = test_x
    top = top_examples(lenet, summaries["conv2"], 5, k=9)
    activations = [e.activation for e in top]
    assert activations == sorted(activations, reverse=True) and len(top) == 9
    for example in top:
        out = lenet.activations(x[example.index : example.index + 1])["conv2"][0, 5]
        i, j = example.position
        assert out[i, j] == pytest.approx(example.activation) and out.max() == pytest.approx(example.activation)


def test_the_box_is_the_units_receptive_field(lenet, summaries):
    for example in top_examples(lenet, summaries["conv2"], 0, k=5):
        i, j = example.position
        # conv2 sees 14x14 input pixels, its neighbours 2 apart (after a 2x2 pool)
        assert example.box == (2 * i, 2 * j, 2 * i + 14, 2 * j + 14)
    fc = top_examples(lenet, summaries["fc1"], 3, k=1)[0]
    assert fc.box == (0, 0, 32, 32) and fc.position == (0, 0)


@pytest.mark.parametrize(("layer", "unit"), [("conv1", 0), ("conv1", 3), ("conv2", 2), ("fc1", 1), ("fc3", 7)])
def test_the_synthetic_picture_excites_its_unit_more_than_the_average_test_picture(lenet, test_x, layer, unit):
    x, _ = test_x
    picture = synthetic_input(lenet, layer, unit)
    assert picture.shape == (1, 32, 32) and picture.min() >= 0 and picture.max() <= 1
    assert unit_value(lenet, layer, unit, picture[None])[0] > unit_value(lenet, layer, unit, x).mean()
    np.testing.assert_allclose(picture, synthetic_input(lenet, layer, unit), atol=1e-5)  # seeded


def test_the_class_map_places_a_picture_where_its_features_put_it(lenet, test_x):
    x, _ = test_x
    features = penultimate(lenet, x)
    assert features.shape == (300, 100)  # fc2's 100 units feed the output
    embedding = pca_embedding(features)
    assert embedding.points.shape == (300, 2) and 0 < embedding.explained.sum() <= 1
    np.testing.assert_allclose(embedding.place(features[:5]), embedding.points[:5], atol=1e-8)
    order, distances = nearest(features, features[17], k=3)
    assert order[0] == 17 and distances[0] == 0


def test_zeroing_every_first_layer_filter_drops_accuracy_to_chance(lenet):
    test = load_dataset("digits", "test")
    blind = apply_edits(lenet, [{"op": "zero", "layer": "conv1", "unit": u} for u in range(6)])
    accuracy, _ = accuracy_and_confusion(blind, test.images, test.labels)
    assert accuracy < 0.15
    assert np.abs(lenet.params["conv1.weight"]).sum() > 0  # the original is untouched


def test_replacing_a_filter_with_its_own_weights_changes_nothing(lenet, test_x):
    x, _ = test_x
    own = lenet.params["conv1.weight"][4, 0].tolist()
    same = apply_edits(lenet, [{"op": "set_filter", "layer": "conv1", "unit": 4, "kernel": own}])
    np.testing.assert_allclose(same.forward(x), lenet.forward(x), rtol=1e-5, atol=1e-5)
    doubled = apply_edits(lenet, [{"op": "scale", "layer": "fc3", "factor": 2}])
    np.testing.assert_allclose(doubled.forward(x[:4]), 2 * lenet.forward(x[:4]), rtol=1e-5)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"op": "drop", "layer": "conv1", "unit": 0}, "op must be one of"),
        ({"op": "zero", "layer": "pool1", "unit": 0}, "is not a layer with weights"),
        ({"op": "zero", "layer": "conv1", "unit": 6}, "conv1 has units 0..5"),
        ({"op": "set_filter", "layer": "conv2", "unit": 0, "kernel": [[0]]}, "first conv layer"),
        ({"op": "set_filter", "layer": "conv1", "unit": 0, "kernel": [[1, 0], [0, 1]]}, "must be a 5x5 grid"),
        ({"op": "scale", "layer": "fc1", "factor": 1e9}, "factor must be a number"),
    ],
)
def test_bad_edits_are_said_in_words(lenet, edit, message):
    with pytest.raises(ValueError, match=message):
        apply_edits(lenet, [edit])
