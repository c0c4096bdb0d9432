"""Attributions and attacks on the shipped LeNet: each against its definition, with the rates the
issue asks for measured on the in-repo held-out digits."""

import numpy as np
import pytest

from engine import load_dataset, load_model, to_network_input
from engine.explain import fgsm, gradcam, integrated_gradients, occlusion, pgd, saliency, smoothgrad, upsample
from tests.reference import numeric_gradient


@pytest.fixture(scope="module")
def lenet():
    return load_model()


@pytest.fixture(scope="module")
def digits():
    test = load_dataset("digits", "test")
    return to_network_input(test.images[:60])[:, :], test.labels[:60]


def test_saliency_is_the_gradient_of_the_targets_logit(lenet, digits):
    x = digits[0][0].astype(np.float64)
    network = lenet.copy()
    network.params = {k: v.astype(np.float64) for k, v in network.params.items()}
    grad = saliency(network, x, 7)
    probe = x[:, 10:14, 12:16].copy()

    def logit_with(patch):
        z = x.copy()
        z[:, 10:14, 12:16] = patch
        return network.forward(z[None])[0, 7]

    expected = numeric_gradient(lambda: logit_with(probe), probe)
    np.testing.assert_allclose(grad[:, 10:14, 12:16], expected, rtol=1e-4, atol=1e-6)


def float64_copy(network):
    """The network in float64: a different summation order then moves a value by ~1e-16, far too little to
    change which of a max-pool window's values wins, so gradients can be compared with tolerances."""
    wide = network.copy()
    wide.params = {k: v.astype(np.float64) for k, v in network.params.items()}
    return wide


def test_smoothgrad_is_seeded_and_averages_noisy_gradients(lenet, digits):
    x = digits[0][1]
    a, b = smoothgrad(lenet, x, 3, noise=0.1, samples=8, seed=1), smoothgrad(lenet, x, 3, noise=0.1, samples=8, seed=1)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    wide = float64_copy(lenet)
    np.testing.assert_allclose(smoothgrad(wide, x, 3, noise=0.0, samples=4), saliency(wide, x, 3), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("samples", [8, 32, 64])
def test_smoothgrad_is_the_mean_saliency_of_its_noisy_copies_at_every_batch_size(lenet, digits, samples):
    """32 and more copies are split across the cores: each slice must carry its own rows' targets."""
    x, wide = digits[0][1], float64_copy(lenet)
    spread = float(x.max() - x.min())
    noisy = x[None] + np.random.default_rng(5).normal(0.0, 0.1 * spread, (samples, *x.shape)).astype(np.float32)
    expected = np.mean([saliency(wide, copy, 3) for copy in noisy], axis=0)
    np.testing.assert_allclose(smoothgrad(wide, x, 3, noise=0.1, samples=samples, seed=5), expected, atol=1e-6)


def test_integrated_gradients_add_up_to_the_logit_difference_within_one_percent(lenet, digits):
    for x in digits[0][:10]:
        target = int(lenet.forward(x[None]).argmax())
        ig = integrated_gradients(lenet, x, target)
        assert ig.attribution.shape == x.shape and ig.baseline == "black"
        assert ig.sum == pytest.approx(ig.logit_difference, rel=0.01, abs=0.05)


def test_gradcam_of_every_conv_layer_is_non_negative_at_its_size_and_upsampled(lenet, digits):
    maps = gradcam(lenet, digits[0][2], int(digits[1][2]))
    assert set(maps) == {"conv1", "conv2"}
    assert maps["conv2"].map.shape == (10, 10) and maps["conv1"].map.shape == (28, 28)
    assert all((m.map >= 0).all() and m.upsampled.shape == (32, 32) for m in maps.values())
    assert maps["conv2"].map.max() > 0


def test_upsampling_keeps_a_constant_map_constant_and_interpolates_between_cells():
    np.testing.assert_allclose(upsample(np.full((5, 5), 3.0), (32, 32)), 3.0)
    ramp = upsample(np.array([[0.0, 1.0]]), (1, 4))
    np.testing.assert_allclose(ramp, [[0.0, 0.25, 0.75, 1.0]])


def test_covering_only_background_barely_changes_the_probability(lenet, digits):
    x = digits[0][3]
    target = int(lenet.forward(x[None]).argmax())
    result = occlusion(lenet, x, target, patch=4, stride=4, value=0.0)
    assert result.map.shape == (8, 8)
    # the 32x32 frame's corners hold no ink (MNIST's 28x28 field is padded by 2 and centred)
    assert abs(result.map[0, 0]) < 0.01 and abs(result.map[-1, -1]) < 0.01
    # a patch big enough to hide most of the digit does matter
    assert occlusion(lenet, x, target, patch=14, stride=6).map.max() > 0.1


def test_pgd_at_epsilon_0_3_flips_most_digits_and_never_leaves_the_ball(lenet, digits):
    images, _ = digits
    flipped = 0
    for x in images[:40]:
        attack = pgd(lenet, x, epsilon=0.3, steps=20)
        assert np.abs(attack.adversarial - x).max() <= 0.3 + 1e-6
        assert attack.adversarial.min() >= 0 and attack.adversarial.max() <= 1
        flipped += attack.flipped
        assert attack.flipped == (attack.result_class != attack.original_class)
    assert flipped / 40 >= 0.8, f"PGD flipped {flipped} of 40"


def test_a_targeted_attack_reaches_its_target_in_most_cases(lenet, digits):
    images, _ = digits
    reached = 0
    for k, x in enumerate(images[:30]):
        target = (int(lenet.forward(x[None]).argmax()) + 1 + k % 9) % 10
        attack = pgd(lenet, x, epsilon=0.3, steps=40, target=target)
        reached += attack.result_class == target
    assert reached / 30 >= 0.7, f"targeted PGD reached {reached} of 30"


def test_fgsm_is_one_step_of_epsilon_along_the_gradient_sign(lenet, digits):
    x = digits[0][4]
    attack = fgsm(lenet, x, 0.1)
    assert attack.steps_taken == 1
    moved = np.abs(attack.adversarial - x)
    assert moved.max() <= 0.1 + 1e-6
    # every pixel moved by epsilon, unless [0, 1] stopped it
    assert ((np.isclose(moved, 0.1, atol=1e-6)) | (attack.adversarial == 0) | (attack.adversarial == 1)).all()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m, x: pgd(m, x, epsilon=2), "epsilon must be in"),
        (lambda m, x: pgd(m, x, epsilon=0.1, target=12), "target must be a class index"),
        (lambda m, x: occlusion(m, x, 1, patch=0), "patch and stride"),
        (lambda m, x: integrated_gradients(m, x, 1, baseline="white"), "baseline must be one of"),
        (lambda m, x: saliency(m, x[:, :28, :28], 1), "the input must be the network's 1x32x32"),
    ],
)
def test_bad_arguments_are_said_in_words(lenet, digits, call, message):
    with pytest.raises(ValueError, match=message):
        call(lenet, digits[0][0])
