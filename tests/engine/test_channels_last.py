"""The network's channels-last ops (engine.channels_last) against the loop references and the
(N, C, H, W) ops they stand in for, forward and backward, over a grid of shapes."""

import numpy as np
import pytest

from engine import channels_last as cl
from engine.conv import conv2d_backward
from engine.pool import avg_pool2d_backward, max_pool2d, max_pool2d_backward
from tests.reference import conv2d_naive, pool2d_naive

# (channels, filters, kernel, height, width, stride, padding, dilation): LeNet's two layers, "same"
# padding (dX as a full correlation), padding wider than the kernel, strides, dilation, rectangles
CONV_CASES = [
    (1, 6, (5, 5), 32, 32, (1, 1), (0, 0), (1, 1)),
    (6, 16, (5, 5), 14, 14, (1, 1), (0, 0), (1, 1)),
    (16, 32, (5, 5), 14, 14, (1, 1), (2, 2), (1, 1)),
    (3, 4, (3, 3), 9, 7, (2, 2), (1, 1), (1, 1)),
    (2, 3, (3, 3), 11, 10, (1, 1), (4, 4), (1, 1)),
    (4, 5, (3, 3), 12, 12, (1, 1), (2, 2), (2, 2)),
    (3, 2, (3, 2), 10, 9, (2, 1), (1, 0), (1, 2)),
]


def _channels_first(grad_weights: np.ndarray, weight_shape: tuple[int, ...]) -> np.ndarray:
    f, c, kh, kw = weight_shape
    return grad_weights.reshape(kh, kw, c, f).transpose(3, 2, 0, 1)


@pytest.mark.parametrize(("c", "f", "kernel", "h", "w", "stride", "padding", "dilation"), CONV_CASES)
def test_conv_matches_the_loop_reference_and_its_gradients_the_reference_op(
    c, f, kernel, h, w, stride, padding, dilation
):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, c, h, w))
    weight, bias = rng.standard_normal((f, c, *kernel)), rng.standard_normal(f)
    geometry = cl.ConvGeometry(kernel, stride, padding, dilation)
    out = cl.conv2d(cl.to_channels_last(x), cl.flat_weights(weight), bias, geometry)
    expected = conv2d_naive(x, weight, bias, stride, padding, dilation)
    np.testing.assert_allclose(cl.to_channels_first(out), expected, rtol=1e-9, atol=1e-9)

    grad_out = rng.standard_normal(expected.shape)
    grad_x, grad_w, grad_b = cl.conv2d_backward(
        cl.to_channels_last(grad_out), cl.to_channels_last(x), cl.flat_weights(weight), geometry
    )
    ref_x, ref_w, ref_b = conv2d_backward(grad_out, x, weight, stride, padding, dilation)
    np.testing.assert_allclose(cl.to_channels_first(grad_x), ref_x, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(_channels_first(grad_w, weight.shape), ref_w, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(grad_b, ref_b, rtol=1e-9, atol=1e-9)


def test_conv_in_chunks_equals_one_pass(monkeypatch):
    """Columns built a picture at a time give the same layer as columns built all at once."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 14, 14, 6)).astype(np.float32)
    weights = rng.standard_normal((5 * 5 * 6, 16)).astype(np.float32)
    geometry = cl.ConvGeometry((5, 5), (1, 1), (0, 0), (1, 1))
    whole = cl.conv2d(x, weights, None, geometry)
    monkeypatch.setattr(cl, "CHUNK_ELEMENTS", 1)
    np.testing.assert_allclose(cl.conv2d(x, weights, None, geometry), whole, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("kernel", "stride"), [((2, 2), (2, 2)), ((4, 4), (4, 4)), ((3, 3), (2, 2)), ((2, 3), (1, 2))])
def test_max_pool_sends_the_gradient_to_the_first_maximum_as_the_reference_does(kernel, stride):
    x = np.random.default_rng(2).integers(0, 3, (2, 3, 9, 10)).astype(np.float64)  # many ties
    out, winners = cl.max_pool2d(cl.to_channels_last(x), kernel, stride, keep_winners=True)
    np.testing.assert_array_equal(cl.to_channels_first(out), pool2d_naive(x, kernel, stride, np.max))
    grad_out = np.random.default_rng(3).standard_normal(out.shape)
    grad_x = cl.max_pool2d_backward(grad_out, winners, (2, 9, 10, 3), kernel, stride)
    expected = max_pool2d_backward(cl.to_channels_first(grad_out), x, kernel, stride)
    np.testing.assert_allclose(cl.to_channels_first(grad_x), expected, atol=1e-12)
    np.testing.assert_array_equal(cl.to_channels_first(out), max_pool2d(x, kernel, stride))


@pytest.mark.parametrize(("kernel", "stride"), [((2, 2), (2, 2)), ((3, 2), (1, 2))])
def test_avg_pool_matches_the_loop_reference_and_shares_the_gradient_alike(kernel, stride):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 9, 8))
    out = cl.avg_pool2d(cl.to_channels_last(x), kernel, stride)
    np.testing.assert_allclose(cl.to_channels_first(out), pool2d_naive(x, kernel, stride, np.mean), atol=1e-12)
    grad_out = rng.standard_normal(out.shape)
    grad_x = cl.avg_pool2d_backward(grad_out, (2, 9, 8, 3), kernel, stride)
    expected = avg_pool2d_backward(cl.to_channels_first(grad_out), x, kernel, stride)
    np.testing.assert_allclose(cl.to_channels_first(grad_x), expected, atol=1e-12)
