"""Pooling, fully connected layers, ReLU, softmax and cross-entropy: references and gradient checks."""

import numpy as np
import pytest

from engine import (
    avg_pool2d,
    avg_pool2d_backward,
    cross_entropy,
    cross_entropy_backward,
    linear,
    linear_backward,
    max_pool2d,
    max_pool2d_backward,
    relu,
    relu_backward,
    softmax,
)
from tests.reference import numeric_gradient, pool2d_naive

POOL_CASES = [((2, 2), (2, 2)), ((3, 3), (2, 2)), ((2, 2), (1, 1)), ((3, 2), (1, 2)), ((3, 3), None)]


@pytest.mark.parametrize(("kernel", "stride"), POOL_CASES)
def test_pooling_matches_the_loop_reference(kernel, stride):
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 8))
    expected_stride = stride or kernel
    np.testing.assert_allclose(max_pool2d(x, kernel, stride), pool2d_naive(x, kernel, expected_stride, np.max))
    np.testing.assert_allclose(avg_pool2d(x, kernel, stride), pool2d_naive(x, kernel, expected_stride, np.mean))


@pytest.mark.parametrize(("kernel", "stride"), POOL_CASES)
def test_pooling_backward_matches_finite_differences(kernel, stride):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2, 7, 6))
    grad_out = rng.standard_normal(max_pool2d(x, kernel, stride).shape)
    for forward, backward in ((max_pool2d, max_pool2d_backward), (avg_pool2d, avg_pool2d_backward)):
        numeric = numeric_gradient(lambda f=forward: float((f(x, kernel, stride) * grad_out).sum()), x)
        np.testing.assert_allclose(backward(grad_out, x, kernel, stride), numeric, atol=1e-6)


def test_max_pool_gradient_goes_to_the_first_maximum_on_ties():
    x = np.zeros((1, 1, 2, 2))
    np.testing.assert_array_equal(max_pool2d_backward(np.ones((1, 1, 1, 1)), x, 2)[0, 0], [[1, 0], [0, 0]])


def test_pool_kernel_larger_than_input_is_refused():
    with pytest.raises(ValueError, match="kernel_size"):
        max_pool2d(np.ones((1, 1, 2, 2)), 3)


def test_linear_and_its_backward():
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((4, 5)), rng.standard_normal((3, 5)), rng.standard_normal(3)
    np.testing.assert_allclose(linear(x, w, b), x @ w.T + b)
    grad_out = rng.standard_normal((4, 3))
    gx, gw, gb = linear_backward(grad_out, x, w)
    for value, param in ((gx, x), (gw, w), (gb, b)):
        numeric = numeric_gradient(lambda: float((linear(x, w, b) * grad_out).sum()), param)
        np.testing.assert_allclose(value, numeric, atol=1e-6)


def test_relu_and_its_backward():
    x = np.array([-2.0, -0.5, 0.5, 3.0])
    np.testing.assert_array_equal(relu(x), [0, 0, 0.5, 3])
    np.testing.assert_array_equal(relu_backward(np.ones(4), x), [0, 0, 1, 1])


def test_softmax_sums_to_one_and_survives_huge_logits():
    p = softmax(np.array([[1000.0, 1000.0, -1000.0]]))
    np.testing.assert_allclose(p, [[0.5, 0.5, 0.0]])


def test_cross_entropy_and_its_backward():
    rng = np.random.default_rng(3)
    logits, labels = rng.standard_normal((5, 10)), rng.integers(0, 10, 5)
    expected = -np.mean(np.log(softmax(logits))[np.arange(5), labels])
    assert cross_entropy(logits, labels) == pytest.approx(expected)
    numeric = numeric_gradient(lambda: cross_entropy(logits, labels), logits)
    np.testing.assert_allclose(cross_entropy_backward(logits, labels), numeric, atol=1e-7)


def test_cross_entropy_refuses_labels_out_of_range():
    with pytest.raises(ValueError, match="labels must lie in 0..9"):
        cross_entropy(np.zeros((1, 10)), np.array([10]))
