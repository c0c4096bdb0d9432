"""The lecture's worked examples, number for number."""

import numpy as np
import pytest

from engine import LENET_SPEC, build_network, conv2d, max_pool2d
from engine._checks import output_size
from engine.arithmetic import explain

LECTURE_IMAGE = np.array(
    [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]], dtype=float
)
LECTURE_FILTER = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], dtype=float)


def as_nchw(a):
    return np.asarray(a, dtype=float)[None, None]


def test_5x5_image_convolved_with_3x3_filter_gives_the_lecture_feature_map():
    out = conv2d(as_nchw(LECTURE_IMAGE), as_nchw(LECTURE_FILTER))[0, 0]
    np.testing.assert_array_equal(out, [[4, 3, 4], [2, 4, 3], [2, 3, 4]])


def test_first_output_is_the_worked_sum_of_products():
    # 1*1 + 1*0 + 1*1 + 0*0 + 1*1 + 1*0 + 0*1 + 0*0 + 1*1 = 4
    products = LECTURE_IMAGE[:3, :3] * LECTURE_FILTER
    assert products.sum() == 4
    assert conv2d(as_nchw(LECTURE_IMAGE), as_nchw(LECTURE_FILTER))[0, 0, 0, 0] == 4


@pytest.mark.parametrize(("stride", "padding", "expected"), [(1, 0, 5), (2, 0, 3), (1, 1, 7)])
def test_7x7_input_with_3x3_filter(stride, padding, expected):
    out = conv2d(np.ones((1, 1, 7, 7)), np.ones((1, 1, 3, 3)), stride=stride, padding=padding)
    assert out.shape == (1, 1, expected, expected)


def test_stride_3_does_not_fit_a_7x7_input():
    # (7 - 3) / 3 + 1 = 2.33: not a whole number, so the filter does not tile the input
    result = explain(7, 3, stride=3)
    assert result.exact == pytest.approx(2.333, abs=1e-3) and not result.fits
    assert result.formula == "(7 + 2*0 - 1*(3-1) - 1)/3 + 1 = 2.33"
    assert result.uncovered == 1
    assert output_size(7, 3, stride=3, padding=0, dilation=1) == 2  # PyTorch floors
    assert conv2d(np.ones((1, 1, 7, 7)), np.ones((1, 1, 3, 3)), stride=3).shape[2:] == (2, 2)


@pytest.mark.parametrize(("f", "pad"), [(3, 1), (5, 2), (7, 3)])
def test_zero_padding_of_f_minus_1_over_2_preserves_size(f, pad):
    assert conv2d(np.ones((1, 1, 32, 32)), np.ones((1, 1, f, f)), padding=pad).shape[2:] == (32, 32)


def test_dilation_2_on_7x7_with_3x3_gives_3x3():
    assert conv2d(np.ones((1, 1, 7, 7)), np.ones((1, 1, 3, 3)), dilation=2).shape[2:] == (3, 3)


def test_shrinking_32_28_24_without_padding():
    x = np.ones((1, 3, 32, 32))
    sizes = []
    for _ in range(2):
        x = conv2d(x, np.ones((3, 3, 5, 5)))
        sizes.append(x.shape[2])
    assert sizes == [28, 24]


def test_ten_5x5x3_filters_have_760_parameters():
    layer = build_network(
        {
            "input": [3, 32, 32],
            "classes": 10,
            "layers": [
                {"type": "conv", "filters": 10, "kernel_size": 5, "padding": 2},
                {"type": "flatten"},
                {"type": "linear", "units": 10},
            ],
        }
    ).describe()[1]
    assert layer["parameters"] == 760
    assert layer["parameter_formula"] == "10 × (5·5·3 + 1) = 760"
    assert layer["output_shape"] == [10, 32, 32]


def test_2x2_max_pooling_with_stride_2():
    x = as_nchw([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]])
    np.testing.assert_array_equal(max_pool2d(x, 2, 2)[0, 0], [[6, 8], [3, 4]])


def test_lenet_matches_the_lecture_architecture():
    model = build_network(LENET_SPEC, seed=0)
    shapes = {k: v.shape[1:] for k, v in model.activations(np.zeros((1, 1, 32, 32))).items()}
    assert shapes == {
        "conv1": (6, 28, 28),
        "pool1": (6, 14, 14),
        "conv2": (16, 10, 10),
        "pool2": (16, 5, 5),
        "fc1": (120,),
        "fc2": (100,),
        "fc3": (10,),
    }
    assert [layer["parameters"] for layer in model.describe()[1:]] == [156, 0, 2416, 0, 48120, 12100, 1010]
    assert model.parameter_count == 63802
