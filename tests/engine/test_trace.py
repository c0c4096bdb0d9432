"""The step-by-step traces the arithmetic page animates, against plain loops."""

import numpy as np
import pytest

from engine.padding import PADDING_MODES
from engine.trace import direct_view_of_transposed, trace_conv2d, trace_conv_transpose2d, trace_pool2d
from tests.reference import source_index

LECTURE_IMAGE = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]], float)
LECTURE_FILTER = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], float)


def test_the_lecture_convolution_traced_cell_by_cell():
    trace = trace_conv2d(LECTURE_IMAGE[None], LECTURE_FILTER[None])
    np.testing.assert_array_equal(trace.output, [[4, 3, 4], [2, 4, 3], [2, 3, 4]])
    assert trace.positions[0, 0].tolist() == [[r, c] for r in range(3) for c in range(3)]
    assert trace.products[0, 0].tolist() == [1, 0, 1, 0, 1, 0, 0, 0, 1]


@pytest.mark.parametrize("mode", PADDING_MODES)
def test_every_listed_product_is_the_padded_input_times_the_weight_at_that_tap(mode):
    rng = np.random.default_rng(len(mode))
    x, kernel = rng.integers(-3, 4, (2, 6, 7)).astype(float), rng.integers(-2, 3, (2, 3, 2)).astype(float)
    stride, padding, dilation, bias = 2, 1, 2, 0.5
    trace = trace_conv2d(x, kernel, bias, stride, padding, dilation, mode)
    oh, ow = trace.output.shape
    for i in range(oh):
        for j in range(ow):
            expected_positions, expected_products, inside = [], [], 0
            for c in range(2):
                for u in range(3):
                    for v in range(2):
                        r, q = i * stride + u * dilation, j * stride + v * dilation
                        expected_positions.append([r, q])
                        src_r = source_index(r - padding, 6, mode)
                        src_q = source_index(q - padding, 7, mode)
                        value = 0.0 if src_r is None or src_q is None else x[c, src_r, src_q]
                        inside += c == 0 and src_r is not None and src_q is not None
                        expected_products.append(value * kernel[c, u, v])
            assert trace.positions[i, j].tolist() == expected_positions[:6]  # the taps repeat per channel
            np.testing.assert_allclose(trace.products[i, j], expected_products)
            total = sum(expected_products) * (6 / inside if mode == "partial" and inside else 1)
            assert trace.output[i, j] == pytest.approx(total + bias)


def test_max_pooling_marks_the_cell_the_engine_picked_even_on_ties():
    trace = trace_pool2d(np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], float), 2)
    np.testing.assert_array_equal(trace.output, [[6, 8], [3, 4]])
    assert trace.winners.tolist() == [[[1, 1], [1, 3]], [[2, 0], [3, 3]]]
    zeros = trace_pool2d(np.zeros((4, 4)), 2)
    assert zeros.winners.tolist() == [[[0, 0], [0, 2]], [[2, 0], [2, 2]]]  # the first maximum, as PyTorch
    average = trace_pool2d(np.arange(16.0).reshape(4, 4), 2, mode="avg")
    assert average.winners is None and average.output[0, 0] == (0 + 1 + 4 + 5) / 4


def test_a_transposed_convolution_is_the_sum_of_each_input_cells_scatter():
    rng = np.random.default_rng(3)
    x, kernel = rng.integers(1, 4, (2, 3)).astype(float), rng.integers(-1, 3, (3, 3)).astype(float)
    trace = trace_conv_transpose2d(x, kernel, stride=2, padding=1)
    rebuilt = np.zeros_like(trace.output)
    for i in range(2):
        for j in range(3):
            for (r, c), product in zip(trace.positions[i, j], trace.products[i, j]):
                if 0 <= r < rebuilt.shape[0] and 0 <= c < rebuilt.shape[1]:
                    rebuilt[r, c] += product
    np.testing.assert_allclose(rebuilt, trace.output)
    assert trace.output.shape == ((2 - 1) * 2 - 2 + 3, (3 - 1) * 2 - 2 + 3)


@pytest.mark.parametrize(("stride", "padding", "dilation"), [(1, 0, 1), (2, 0, 1), (2, 1, 1), (3, 2, 2), (2, 3, 1)])
def test_the_direct_view_of_a_transposed_convolution_gives_the_same_output(stride, padding, dilation):
    """Zero-insert S - 1 between cells, pad D(F-1) - P, read with the flipped kernel: the transposed output."""
    rng = np.random.default_rng(stride * 10 + padding)
    x, kernel = rng.normal(size=(3, 4)), rng.normal(size=(3, 3))
    direct = direct_view_of_transposed(x, kernel, 0.5, stride, padding, dilation)
    if dilation * 2 - padding < 0:
        assert direct is None
        return
    assert direct is not None and direct.padding == dilation * 2 - padding
    np.testing.assert_allclose(
        direct.trace.output, trace_conv_transpose2d(x, kernel, 0.5, stride, padding, dilation).output
    )
    np.testing.assert_array_equal(direct.kernel, kernel[::-1, ::-1])
    border = 2 * direct.padding
    assert direct.input.shape == ((3 - 1) * stride + 1 + border, (4 - 1) * stride + 1 + border)
