"""Transfer learning: LeNet's layers kept, a new output layer for new classes, frozen layers untouched by
training, and colour pictures fitted to a network's input."""

from __future__ import annotations

import numpy as np
import pytest

from engine import SHIPPED_MODELS
from engine.datasets import load_dataset, to_network_input
from engine.errors import EngineError
from engine.finetune import fine_tune_network
from engine.network import load_network
from engine.train import train_network


@pytest.fixture(scope="module")
def lenet():
    return load_network(SHIPPED_MODELS["lenet"])


def test_a_fine_tune_keeps_every_layer_but_a_new_output_for_the_new_classes(lenet):
    network, frozen = fine_tune_network(lenet, classes=3, input_shape=(1, 28, 28), freeze=["conv1", "conv2"])
    assert frozen == ["conv1", "conv2"]
    assert network.input_shape == (1, 32, 32)  # 28x28 drawings are padded to 32x32, as the digits are
    assert network.classes == 3 and network.params["fc3.weight"].shape == (3, 100)
    for name in ("conv1.weight", "conv2.bias", "fc1.weight", "fc2.weight"):
        np.testing.assert_array_equal(network.params[name], lenet.params[name])
        assert network.params[name] is not lenet.params[name]  # a copy: training it leaves LeNet alone
    assert network.parameter_count == lenet.parameter_count - 7 * 101


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"freeze": ["conv9"]}, "has no layer 'conv9'"),
        ({"freeze": ["pool1"]}, "pool1 has no weights"),
        ({"freeze": ["fc3"]}, "fc3 is the output layer"),
        ({"input_shape": (3, 32, 32)}, "input is 1x32x32 but the data set's pictures are 3x32x32"),
        ({"input_shape": (1, 40, 40)}, "at least as large"),
    ],
)
def test_a_mismatch_is_refused_naming_it(lenet, kwargs, words):
    with pytest.raises(EngineError, match=words):
        fine_tune_network(
            lenet, classes=3, input_shape=kwargs.get("input_shape", (1, 28, 28)), freeze=kwargs.get("freeze", ())
        )


def test_frozen_layers_keep_their_weights_while_the_others_learn(lenet):
    network, frozen = fine_tune_network(lenet, classes=2, input_shape=(1, 28, 28), freeze=["conv1", "conv2", "fc1"])
    digits = load_dataset("digits", "train")
    pick = np.isin(digits.labels, (0, 1))
    images, labels = digits.images[pick][:200], (digits.labels[pick][:200] == 1).astype(np.uint8)
    before = {k: v.copy() for k, v in network.params.items()}
    train_network(network, images, labels, epochs=1, batch_size=32, learning_rate=1e-3, frozen=frozen)
    for name, value in network.params.items():
        moved = not np.array_equal(value, before[name])
        assert moved == (name.split(".")[0] in ("fc2", "fc3")), name


def test_colour_pictures_fill_a_colour_input_and_a_grey_one_with_their_mean():
    rgb = np.zeros((2, 3, 28, 28), np.uint8)
    rgb[:, 0] = 255  # pure red
    colour = to_network_input(rgb, (3, 32, 32))
    assert colour.shape == (2, 3, 32, 32) and colour[0, 0, 2:30, 2:30].min() == 1 and colour[0, 1].max() == 0
    grey = to_network_input(rgb, (1, 28, 28))
    np.testing.assert_allclose(grey, 1 / 3, rtol=1e-6)
    assert to_network_input(np.zeros((1, 28, 28), np.uint8), (3, 24, 24)).shape == (1, 3, 24, 24)


@pytest.mark.parametrize(
    ("frozen", "weight_grads", "input_grads"),
    [
        # the convolutions frozen: the backward pass ends at fc1, no conv layer is visited
        (["conv1", "conv2"], 0, 0),
        # conv1 frozen: conv2 gets its weights' gradient, and nothing is sent below it
        (["conv1"], 1, 0),
        # conv2 frozen under a trained conv1: conv2 passes the gradient down without its own
        (["conv2"], 1, 1),
    ],
)
def test_frozen_layers_get_no_gradients_and_the_backward_pass_stops_at_the_first_that_trains(
    lenet, monkeypatch, frozen, weight_grads, input_grads
):
    import engine.channels_last as cl

    calls = []
    original = cl.conv2d_backward

    def counted(grad, x, weights, geometry, need_input_grad=True, need_weight_grad=True):
        calls.append((need_input_grad, need_weight_grad))
        return original(grad, x, weights, geometry, need_input_grad, need_weight_grad)

    rng = np.random.default_rng(0)
    x = rng.random((8, 1, 32, 32), dtype=np.float32)
    labels = rng.integers(0, 10, 8)
    _, logits, every = lenet.loss_and_gradients(x, labels)
    monkeypatch.setattr(cl, "conv2d_backward", counted)
    _, frozen_logits, grads = lenet.loss_and_gradients(x, labels, frozen=frozen)
    assert sorted(grads) == sorted(k for k in lenet.params if k.split(".")[0] not in frozen)
    for key, grad in grads.items():
        np.testing.assert_allclose(grad, every[key], rtol=1e-5, atol=1e-7, err_msg=key)
    np.testing.assert_allclose(frozen_logits, logits, rtol=1e-6)
    assert sum(weight for _, weight in calls) == weight_grads
    assert sum(needed for needed, _ in calls) == input_grads
