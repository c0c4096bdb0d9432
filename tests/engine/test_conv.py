"""conv2d, conv2d_backward and conv_transpose2d against loop twins, scipy and finite differences."""

import numpy as np
import pytest
from scipy import ndimage, signal

from engine import conv2d, conv2d_backward, conv_transpose2d, partial_conv_ratio
from engine.conv import conv2d_with_columns
from engine.padding import PADDING_MODES
from tests.reference import conv2d_naive, conv_transpose2d_naive, numeric_gradient


def random_case(rng, *, mode="zeros"):
    """Random shapes, strides, paddings and dilations that fit the input."""
    while True:
        n, c, f = rng.integers(1, 3), rng.integers(1, 4), rng.integers(1, 4)
        h, w = rng.integers(3, 10, 2)
        kh, kw = rng.integers(1, 4, 2)
        stride, padding, dilation = (
            tuple(int(v) for v in rng.integers(lo, hi, 2)) for lo, hi in ((1, 4), (0, 3), (1, 3))
        )
        if mode == "reflect" and max(padding[0] - h + 1, padding[1] - w + 1) > 0:
            continue
        if dilation[0] * (kh - 1) + 1 > h + 2 * padding[0] or dilation[1] * (kw - 1) + 1 > w + 2 * padding[1]:
            continue
        x = rng.standard_normal((n, c, h, w))
        weight = rng.standard_normal((f, c, kh, kw))
        return x, weight, rng.standard_normal(f), stride, padding, dilation


@pytest.mark.parametrize("mode", PADDING_MODES)
def test_conv2d_matches_the_loop_reference_in_every_padding_mode(mode):
    rng = np.random.default_rng(len(mode))
    for _ in range(25):
        x, weight, bias, stride, padding, dilation = random_case(rng, mode=mode)
        out = conv2d(x, weight, bias, stride, padding, dilation, padding_mode=mode)
        expected = conv2d_naive(x, weight, bias, stride, padding, dilation, mode)
        np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    ("mode", "scipy_mode"),
    [("zeros", "constant"), ("reflect", "mirror"), ("replicate", "nearest"), ("circular", "wrap")],
)
def test_same_padding_agrees_with_scipy_ndimage(mode, scipy_mode):
    rng = np.random.default_rng(1)
    image, kernel = rng.standard_normal((17, 23)), rng.standard_normal((5, 5))
    out = conv2d(image[None, None], kernel[None, None], padding=2, padding_mode=mode)[0, 0]
    np.testing.assert_allclose(out, ndimage.correlate(image, kernel, mode=scipy_mode), atol=1e-10)


def test_valid_correlation_agrees_with_scipy_signal():
    rng = np.random.default_rng(2)
    image, kernel = rng.standard_normal((12, 9)), rng.standard_normal((4, 3))
    out = conv2d(image[None, None], kernel[None, None])[0, 0]
    np.testing.assert_allclose(out, signal.correlate2d(image, kernel, mode="valid"), atol=1e-10)


def test_multichannel_output_is_the_sum_over_channels_plus_bias():
    rng = np.random.default_rng(3)
    x, weight = rng.standard_normal((1, 3, 8, 8)), rng.standard_normal((1, 3, 3, 3))
    per_channel = sum(signal.correlate2d(x[0, c], weight[0, c], mode="valid") for c in range(3))
    np.testing.assert_allclose(conv2d(x, weight, np.array([0.5]))[0, 0], per_channel + 0.5, atol=1e-10)


def test_float32_stays_float32():
    out = conv2d(np.ones((1, 1, 6, 6), np.float32), np.ones((2, 1, 3, 3), np.float32))
    assert out.dtype == np.float32


def test_partial_padding_leaves_the_interior_alone_and_keeps_a_blur_bright_at_the_border():
    image = np.full((1, 1, 8, 8), 100.0)
    box = np.full((1, 1, 3, 3), 1 / 9)
    zeros = conv2d(image, box, padding=1)[0, 0]
    partial = conv2d(image, box, padding=1, padding_mode="partial")[0, 0]
    np.testing.assert_allclose(zeros[1:-1, 1:-1], 100)
    assert zeros[0, 0] == pytest.approx(400 / 9)  # a corner sees 4 of 9 pixels: darkened
    np.testing.assert_allclose(partial, 100)  # re-weighted by 9/4, 9/6: no darkening


def test_partial_ratio_is_window_area_over_valid_area():
    ratio = partial_conv_ratio((5, 5), (3, 3), (1, 1), (1, 1), (1, 1))
    assert ratio[0, 0] == pytest.approx(9 / 4)
    assert ratio[0, 2] == pytest.approx(9 / 6)
    assert ratio[2, 2] == 1


def test_partial_padding_applies_the_bias_after_reweighting():
    image, box = np.full((1, 1, 4, 4), 9.0), np.full((1, 1, 3, 3), 1 / 9)
    out = conv2d(image, box, np.array([1.0]), padding=1, padding_mode="partial")
    np.testing.assert_allclose(out, 10.0)


@pytest.mark.parametrize("seed", range(8))
def test_conv2d_backward_matches_finite_differences(seed):
    rng = np.random.default_rng(seed)
    x, weight, bias, stride, padding, dilation = random_case(rng)
    grad_out = rng.standard_normal(conv2d(x, weight, bias, stride, padding, dilation).shape)

    def loss():
        return float((conv2d(x, weight, bias, stride, padding, dilation) * grad_out).sum())

    grad_x, grad_w, grad_b = conv2d_backward(grad_out, x, weight, stride, padding, dilation)
    np.testing.assert_allclose(grad_x, numeric_gradient(loss, x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad_w, numeric_gradient(loss, weight), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad_b, numeric_gradient(loss, bias), rtol=1e-5, atol=1e-6)


def test_conv_transpose2d_matches_the_scatter_reference():
    rng = np.random.default_rng(5)
    checked = 0
    for _ in range(40):
        x, weight, bias, stride, padding, dilation = random_case(rng)
        weight_t = rng.standard_normal((x.shape[1], 2, *weight.shape[2:]))
        output_padding = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))
        try:
            out = conv_transpose2d(x, weight_t, bias[:1].repeat(2), stride, padding, dilation, output_padding)
        except ValueError:  # padding larger than the output: checked below
            continue
        expected = conv_transpose2d_naive(x, weight_t, bias[:1].repeat(2), stride, padding, dilation, output_padding)
        np.testing.assert_allclose(out, expected, atol=1e-10)
        checked += 1
    assert checked >= 20  # the skipped draws (padding that crops everything) must not be all of them


def test_conv_transpose2d_is_the_gradient_of_conv2d_with_respect_to_its_input():
    rng = np.random.default_rng(6)
    x, weight = rng.standard_normal((2, 3, 9, 9)), rng.standard_normal((4, 3, 3, 3))
    grad_out = rng.standard_normal(conv2d(x, weight, stride=2, padding=1).shape)
    grad_x, _, _ = conv2d_backward(grad_out, x, weight, stride=2, padding=1)
    np.testing.assert_allclose(conv_transpose2d(grad_out, weight, stride=2, padding=1), grad_x, atol=1e-10)


def test_transposed_2x2_input_with_3x3_kernel_stride_2_grows_to_5x5():
    # conv_arithmetic: (i - 1)*s + k = (2 - 1)*2 + 3 = 5
    assert conv_transpose2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3)), stride=2).shape == (1, 1, 5, 5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stride": 0}, "stride must be >= 1"),
        ({"padding": -1}, "padding must be >= 0"),
        ({"dilation": 0}, "dilation must be >= 1"),
        ({"padding_mode": "mirror"}, "padding_mode must be one of zeros, reflect, replicate, circular, partial"),
        ({"stride": (1, 2, 3)}, "stride must be an int or a pair"),
        ({"padding": 5, "padding_mode": "reflect"}, "reflect needs padding < 4"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), **kwargs)


def test_kernel_larger_than_the_padded_input_is_refused():
    with pytest.raises(ValueError, match="larger than the padded input"):
        conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 5, 5)))


def test_wrong_ndim_and_channel_mismatch_are_refused():
    with pytest.raises(ValueError, match="must have 4 dimensions"):
        conv2d(np.ones((4, 4)), np.ones((1, 1, 3, 3)))
    with pytest.raises(ValueError, match="input channels"):
        conv2d(np.ones((1, 2, 4, 4)), np.ones((1, 3, 3, 3)))


def test_large_inputs_are_convolved_band_by_band_with_the_same_result(monkeypatch):
    import engine.conv

    rng = np.random.default_rng(7)
    x, weight = rng.standard_normal((2, 3, 20, 17)), rng.standard_normal((4, 3, 3, 3))
    whole = conv2d(x, weight, padding=1, stride=2, padding_mode="partial")
    monkeypatch.setattr(engine.conv, "IM2COL_MAX_ELEMENTS", 200)  # forces one output row per band
    np.testing.assert_allclose(conv2d(x, weight, padding=1, stride=2, padding_mode="partial"), whole, atol=1e-12)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "partial"])
def test_conv2d_with_columns_is_conv2d_and_its_columns_give_the_same_gradients(mode):
    rng = np.random.default_rng(7)
    x, weight, bias = rng.normal(size=(3, 2, 9, 8)), rng.normal(size=(4, 2, 3, 3)), rng.normal(size=4)
    args = {"stride": (2, 1), "padding": 1, "dilation": 1, "padding_mode": mode}
    out, columns = conv2d_with_columns(x, weight, bias, **args)
    np.testing.assert_allclose(out, conv2d(x, weight, bias, **args), rtol=1e-10, atol=1e-10)
    grad_out = rng.normal(size=out.shape)
    with_columns = conv2d_backward(grad_out, x, weight, columns=columns, **args)
    without = conv2d_backward(grad_out, x, weight, **args)
    for a, b in zip(with_columns, without):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
