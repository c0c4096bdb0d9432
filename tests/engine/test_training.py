"""The training library: any network on either shipped data set, with its hooks, its optimizers,
its augmentations, and the two shipped models' accuracy."""

import numpy as np
import pytest

from engine import SHIPPED_MODELS, build_network, load_dataset, load_network, to_network_input
from engine.architectures import architecture
from engine.train import (
    SGD,
    Adam,
    TrainingFailed,
    accuracy_and_confusion,
    bilinear_sample,
    blur_matrix,
    random_shift_flip,
    random_warp,
    train_network,
)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", "train"), load_dataset("digits", "test")


def test_the_shipped_data_sets_have_their_sizes_and_class_names():
    sizes = {
        (name, split): len(load_dataset(name, split)) for name in ("digits", "fashion") for split in ("train", "test")
    }
    assert sizes == {
        ("digits", "train"): 7200,
        ("digits", "test"): 800,
        ("fashion", "train"): 12000,
        ("fashion", "test"): 2000,
    }
    fashion = load_dataset("fashion", "train")
    assert fashion.classes[0] == "T-shirt/top" and fashion.classes[9] == "Ankle boot"
    assert fashion.images.dtype == np.uint8 and fashion.images.shape[1:] == (28, 28)
    assert np.bincount(fashion.labels).tolist() == [1200] * 10
    assert load_dataset("digits", "test").classes == tuple("0123456789")


def test_the_digits_test_split_is_what_the_shipped_lenet_never_trained_on():
    model = load_network(SHIPPED_MODELS["lenet"])
    test = load_dataset("digits", "test")
    accuracy, confusion = accuracy_and_confusion(model, test.images, test.labels)
    assert accuracy == pytest.approx(model.meta["test_accuracy"])
    assert accuracy >= 0.985
    assert confusion.sum() == 800
    # and none of its 800 digits is among the 7,200 training digits
    train = load_dataset("digits", "train")
    seen = {img.tobytes() for img in train.images}
    assert not any(img.tobytes() in seen for img in test.images)


def test_the_shipped_clothing_model_reaches_89_percent_on_unseen_fashion_mnist():
    model = load_network(SHIPPED_MODELS["fashion"])
    test = load_dataset("fashion", "test")
    accuracy, _ = accuracy_and_confusion(model, test.images, test.labels)
    assert accuracy >= 0.89
    assert accuracy == pytest.approx(model.meta["test_accuracy"])
    assert model.meta["training_seconds"] > 0 and model.labels[9] == "Ankle boot"


def test_one_epoch_of_lenet_learns_the_digits_and_reports_as_it_goes(digits):
    train, test = digits
    progress, epochs, snapshots = [], [], []
    network = build_network(architecture("lenet"), seed=0)
    result = train_network(
        network,
        train.images[:2048],
        train.labels[:2048],
        epochs=2,
        batch_size=64,
        learning_rate=3e-3,
        val_images=test.images[:200],
        val_labels=test.labels[:200],
        on_progress=progress.append,
        on_epoch=epochs.append,
        snapshot_every=16,
        on_snapshot=lambda step, params: snapshots.append((step, params["conv1.weight"].copy())),
        progress_seconds=0.0,
    )
    assert result.steps == 64 and not result.stopped
    assert [p["step"] for p in progress] == list(range(1, 65))
    assert {"epoch", "step", "steps", "loss", "accuracy", "examples_per_second", "eta_seconds"} <= set(progress[0])
    assert progress[-1]["eta_seconds"] == 0 and progress[0]["steps"] == 64
    assert [e["epoch"] for e in epochs] == [1, 2] and epochs[-1]["val_accuracy"] > 0.7
    assert [s for s, _ in snapshots] == [0, 16, 32, 48, 64]
    assert not np.allclose(snapshots[0][1], snapshots[-1][1])  # the filters moved
    np.testing.assert_array_equal(snapshots[-1][1], network.params["conv1.weight"])
    accuracy, _ = accuracy_and_confusion(network, test.images, test.labels)
    assert accuracy > 0.85


def test_a_seed_makes_a_run_repeatable(digits):
    train, _ = digits

    def run():
        network = build_network(architecture("tiny"), seed=4)
        kwargs = dict(epochs=1, batch_size=32, augment="digits", elastic=8.0, seed=4, learning_rate=1e-2)
        train_network(network, train.images[:256], train.labels[:256], **kwargs)
        return network.params["conv1.weight"]

    np.testing.assert_allclose(run(), run(), rtol=1e-4, atol=1e-6)


def test_should_stop_ends_the_run_between_steps(digits):
    train, _ = digits
    calls = []

    def stop_after_three():
        calls.append(1)
        return len(calls) > 3

    result = train_network(
        build_network(architecture("tiny")),
        train.images[:640],
        train.labels[:640],
        epochs=5,
        should_stop=stop_after_three,
    )
    assert result.stopped and result.steps == 3 and result.epochs == []


def test_sgd_with_momentum_trains_too_and_a_huge_rate_fails_in_words(digits):
    train, test = digits
    network = build_network(architecture("tiny"), seed=1)
    train_network(network, train.images[:2048], train.labels[:2048], epochs=2, optimizer="sgd", learning_rate=0.05)
    assert accuracy_and_confusion(network, test.images, test.labels)[0] > 0.6
    with pytest.raises(TrainingFailed, match="the loss became .* try a tenth of it"):
        train_network(
            build_network(architecture("tiny"), seed=1),
            train.images[:512],
            train.labels[:512],
            epochs=3,
            optimizer="sgd",
            learning_rate=1e6,
            schedule="constant",
        )


def test_a_batch_too_big_for_one_im2col_is_split_into_chunks_with_the_same_gradient(monkeypatch):
    network = build_network(architecture("tinyvgg"), seed=2)
    network.params = {k: v.astype(np.float64) for k, v in network.params.items()}
    x = np.random.default_rng(0).random((12, 1, 28, 28))
    labels = np.arange(12) % 10
    from engine import train as train_module

    whole = network.loss_and_gradients(x, labels)
    monkeypatch.setattr(network, "max_batch", lambda *a: 5)
    loss, logits, grads = train_module._gradients(network, x, labels, np.random.default_rng(0))
    assert loss == pytest.approx(whole[0])
    for name in grads:
        np.testing.assert_allclose(grads[name], whole[2][name], rtol=1e-10, atol=1e-12)


def test_optimizers_move_a_parameter_downhill():
    for rule in (Adam({"w.weight": np.array([1.0])}, weight_decay=0.0), SGD({"w.weight": np.array([1.0])})):
        for _ in range(100):
            rule.step({"w.weight": 2 * rule.params["w.weight"]}, lr=0.05)  # gradient of w^2
        assert abs(rule.params["w.weight"][0]) < 0.2


def test_digit_warps_keep_the_ink_roughly_in_place():
    images = to_network_input(load_dataset("digits", "test").images[:8])[:, 0]
    moved = random_warp(images, np.random.default_rng(0))
    assert moved.shape == images.shape
    assert np.abs(moved.sum(axis=(1, 2)) / images.sum(axis=(1, 2)) - 1).max() < 0.3
    identity = random_warp(images, np.random.default_rng(0), degrees=0, scale=0, shift=0)
    np.testing.assert_allclose(identity, images, atol=1e-5)


def _bilinear_naive(image, y, x):
    """One point, read the textbook way: the four neighbours, zero outside, weighted by distance."""
    h, w = image.shape
    y0, x0 = int(np.floor(y)), int(np.floor(x))
    total = 0.0
    for yi, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xi, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yi < h and 0 <= xi < w:
                total += wy * wx * float(image[yi, xi])
    return total


def test_bilinear_sampling_matches_the_point_by_point_reading_in_and_far_outside_the_picture():
    rng = np.random.default_rng(0)
    images = rng.random((3, 7, 5), dtype=np.float32)
    # points inside, on the border, half a pixel out, and far out on every side; some exactly on pixels
    src_y = rng.uniform(-4, 10, (3, 7, 5)).astype(np.float32)
    src_x = rng.uniform(-4, 8, (3, 7, 5)).astype(np.float32)
    src_y[:, 0, :], src_x[:, 0, :] = np.arange(5, dtype=np.float32), 2.0
    src_y[:, 1, :2], src_x[:, 1, :2] = -0.5, 4.5
    out = bilinear_sample(images, src_y, src_x)
    expected = [
        [[_bilinear_naive(images[b], src_y[b, i, j], src_x[b, i, j]) for j in range(5)] for i in range(7)]
        for b in range(3)
    ]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_a_blur_matrix_is_the_edge_padded_sliding_correlation():
    rng = np.random.default_rng(1)
    taps = np.array([0.1, 0.2, 0.4, 0.2, 0.1], np.float32)
    signal = rng.random(6).astype(np.float32)  # shorter than twice the radius plus one on purpose
    padded = np.pad(signal, 2, mode="edge")
    expected = [sum(taps[k] * padded[i + k] for k in range(5)) for i in range(6)]
    np.testing.assert_allclose(blur_matrix(6, taps) @ signal, expected, rtol=1e-6)
    np.testing.assert_allclose(blur_matrix(6, taps).sum(axis=1), 1, rtol=1e-6)  # a blur keeps the mean


def test_clothing_augmentation_shifts_and_mirrors_without_changing_the_pixels():
    images = load_dataset("fashion", "test").images[:64].astype(np.float32)
    moved = random_shift_flip(images, np.random.default_rng(0), shift=2)
    assert moved.shape == images.shape
    # each result is the image (or its mirror image) moved by at most 2 pixels
    for original, result in zip(images, moved):
        candidates = [
            np.roll(np.roll(np.pad(img, 2), dy, 0), dx, 1)[2:-2, 2:-2]
            for img in (original, original[:, ::-1])
            for dy in range(-2, 3)
            for dx in range(-2, 3)
        ]
        assert any(np.array_equal(result, c) for c in candidates)


def test_a_short_run_still_reports_a_curve_of_many_points():
    network = build_network(architecture("tiny"), seed=0)
    digits = load_dataset("digits", "train")
    result = train_network(network, digits.images[:3200], digits.labels[:3200], epochs=1, batch_size=32)
    steps = [p["step"] for p in result.history]
    assert len(steps) >= 50 and steps == sorted(steps)  # 100 steps: a point every second step at least
