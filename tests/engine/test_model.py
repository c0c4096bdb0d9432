"""LeNet: the shipped weights, the backward pass, saving and loading, and the training loop."""

import numpy as np
import pytest

from engine import LAYER_NAMES, LeNet, load_digits, load_model, to_network_input
from engine.train import Adam, accuracy_and_confusion, random_warp, train
from tests.conftest import SAMPLE_PATH


def test_the_shipped_model_reads_at_least_98_5_percent_of_the_unseen_sample():
    images, labels = load_digits(SAMPLE_PATH)
    accuracy, confusion = accuracy_and_confusion(load_model(), images, labels)
    assert len(labels) >= 300
    assert accuracy >= 0.985, f"accuracy {accuracy:.2%}\n{confusion}"
    assert confusion.sum() == len(labels)


def test_shipped_model_carries_its_metadata():
    meta = load_model().meta
    assert meta["version"]
    assert meta["val_accuracy"] >= 0.985
    assert meta["parameters"] == 63802


def test_activations_come_in_layer_order_and_end_with_the_logits():
    model = load_model()
    x = to_network_input(load_digits(SAMPLE_PATH)[0][:3])
    acts = model.activations(x)
    assert tuple(acts) == LAYER_NAMES
    np.testing.assert_array_equal(acts["fc3"], model.forward(x))
    np.testing.assert_allclose(model.predict_proba(x).sum(axis=1), 1, rtol=1e-6)


def test_forward_refuses_the_wrong_input_shape():
    with pytest.raises(ValueError, match=r"\(N, 1, 32, 32\)"):
        load_model().forward(np.zeros((1, 28, 28)))


def test_backward_pass_matches_finite_differences_on_every_parameter():
    rng = np.random.default_rng(0)
    model = LeNet.initialize(seed=1)
    model.params = {k: v.astype(np.float64) for k, v in model.params.items()}
    x, labels = rng.random((2, 1, 32, 32)), np.array([3, 7])
    _, _, grads = model.loss_and_gradients(x, labels)
    for name, param in model.params.items():
        # probe a few entries of each parameter (the full check of every op lives in test_conv)
        flat = param.reshape(-1)
        for k in rng.choice(flat.size, size=min(5, flat.size), replace=False):
            saved = flat[k]
            flat[k] = saved + 1e-5
            up = model.loss_and_gradients(x, labels)[0]
            flat[k] = saved - 1e-5
            down = model.loss_and_gradients(x, labels)[0]
            flat[k] = saved
            assert grads[name].reshape(-1)[k] == pytest.approx((up - down) / 2e-5, rel=1e-3, abs=1e-6), name


def test_save_and_load_round_trip(tmp_path):
    model = LeNet.initialize(seed=2)
    model.meta["version"] = "test"
    model.save(tmp_path / "w.npz")
    loaded = LeNet.load(tmp_path / "w.npz")
    assert loaded.meta == {"version": "test"}
    for name, value in model.params.items():
        np.testing.assert_array_equal(loaded.params[name], value)


def test_loading_something_else_is_a_clear_error(tmp_path):
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a LeNet weights file"):
        LeNet.load(tmp_path / "other.npz")


def test_a_short_training_run_learns(capsys):
    images, labels = load_digits(SAMPLE_PATH)
    model = train(images[:256], labels[:256], epochs=4, seed=0, batch_size=32, augment=False)
    accuracy, _ = accuracy_and_confusion(model, images[:256], labels[:256])
    assert accuracy > 0.6  # from 10% at chance
    assert "epoch 4/4" in capsys.readouterr().err


def test_adam_moves_a_parameter_downhill():
    param = {"w.weight": np.array([1.0])}
    optimizer = Adam(param, weight_decay=0.0)
    for _ in range(100):
        optimizer.step({"w.weight": 2 * param["w.weight"]}, lr=0.05)  # gradient of w^2
    assert abs(param["w.weight"][0]) < 0.2


def test_augmentation_keeps_the_ink_roughly_in_place():
    images = to_network_input(load_digits(SAMPLE_PATH)[0][:8])[:, 0]
    moved = random_warp(images, np.random.default_rng(0))
    assert moved.shape == images.shape
    assert np.abs(moved.sum(axis=(1, 2)) / images.sum(axis=(1, 2)) - 1).max() < 0.3
    identity = random_warp(images, np.random.default_rng(0), degrees=0, scale=0, shift=0)
    np.testing.assert_allclose(identity, images, atol=1e-5)
