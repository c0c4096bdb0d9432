"""Max and average pooling over (N, C, H, W), each channel on its own.

``OH = floor((H - KH) / SH) + 1``; the stride defaults to the kernel size, so
the common 2x2 pooling halves the height and width.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from engine._checks import Pair, as_float_array, as_pair, check_fits, output_size
from engine.conv import IntOrPair
from engine.errors import EngineError


def _pool_args(x: np.ndarray, kernel_size: IntOrPair, stride: IntOrPair | None) -> tuple[np.ndarray, Pair, Pair]:
    x = as_float_array(x, "x (N, C, H, W)", 4)
    kernel = as_pair(kernel_size, "kernel_size", minimum=1)
    stride = kernel if stride is None else as_pair(stride, "stride", minimum=1)
    check_fits((x.shape[2], x.shape[3]), kernel, (0, 0), (1, 1), what="kernel_size")
    return x, kernel, stride


def _taps(x: np.ndarray, kernel: Pair, stride: Pair) -> Iterator[np.ndarray]:
    """For each kernel tap (u, v), the strided slice of ``x`` it sees across all windows: (N, C, OH, OW)."""
    oh, ow = (output_size(x.shape[2 + a], kernel[a], stride[a], 0, 1) for a in (0, 1))
    for u in range(kernel[0]):
        for v in range(kernel[1]):
            yield x[:, :, _tap_slice(u, stride[0], oh), _tap_slice(v, stride[1], ow)]


def max_pool2d(x: np.ndarray, kernel_size: IntOrPair, stride: IntOrPair | None = None) -> np.ndarray:
    """``out[n, c, i, j] = max_{u,v} x[n, c, i*SH + u, j*SW + v]``; (N, C, H, W) -> (N, C, OH, OW)."""
    x, kernel, stride = _pool_args(x, kernel_size, stride)
    # an elementwise maximum over the KH*KW tap slices: no window copy at all
    taps = _taps(x, kernel, stride)
    out = next(taps).copy()
    for tap in taps:
        np.maximum(out, tap, out=out)
    return out


def max_pool2d_backward(
    grad_out: np.ndarray,
    x: np.ndarray,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Gradient of :func:`max_pool2d`: each output's gradient goes to the input that was the
    maximum of its window (the first one on ties, as in PyTorch); (N, C, OH, OW) -> (N, C, H, W).

    Like the forward pass it walks the KH*KW tap slices: the first tap equal to the window's
    maximum takes the gradient, and later taps of that window are skipped. ``out``, the forward
    pass's result if the caller kept it, saves finding the maxima again.
    """
    x, kernel, stride = _pool_args(x, kernel_size, stride)
    oh, ow = (output_size(x.shape[2 + a], kernel[a], stride[a], 0, 1) for a in (0, 1))
    grad_out = np.asarray(grad_out, x.dtype)
    if grad_out.shape[2:] != (oh, ow):
        raise EngineError(f"grad_out must have spatial shape {(oh, ow)}, got {grad_out.shape[2:]}")
    best = max_pool2d(x, kernel, stride) if out is None else out
    grad_x = np.zeros_like(x)
    unclaimed = np.ones(best.shape, bool)
    won = np.empty(best.shape, bool)
    for (u, v), tap in zip(np.ndindex(*kernel), _taps(x, kernel, stride)):
        np.equal(tap, best, out=won)
        won &= unclaimed
        unclaimed ^= won
        grad_x[:, :, _tap_slice(u, stride[0], oh), _tap_slice(v, stride[1], ow)] += np.where(won, grad_out, 0)
    return grad_x


def _tap_slice(offset: int, stride: int, size: int) -> slice:
    """The input rows (or columns) that kernel tap ``offset`` reads across ``size`` windows."""
    return slice(offset, offset + stride * (size - 1) + 1, stride)


def avg_pool2d(x: np.ndarray, kernel_size: IntOrPair, stride: IntOrPair | None = None) -> np.ndarray:
    """``out[n, c, i, j] = mean_{u,v} x[n, c, i*SH + u, j*SW + v]``; (N, C, H, W) -> (N, C, OH, OW)."""
    x, kernel, stride = _pool_args(x, kernel_size, stride)
    taps = _taps(x, kernel, stride)
    out = next(taps).copy()
    for tap in taps:
        out += tap
    return out / (kernel[0] * kernel[1])


def avg_pool2d_backward(
    grad_out: np.ndarray, x: np.ndarray, kernel_size: IntOrPair, stride: IntOrPair | None = None
) -> np.ndarray:
    """Gradient of :func:`avg_pool2d`: each output's gradient is shared equally by its window."""
    x, kernel, stride = _pool_args(x, kernel_size, stride)
    oh, ow = (output_size(x.shape[2 + a], kernel[a], stride[a], 0, 1) for a in (0, 1))
    grad_out = np.asarray(grad_out, x.dtype)
    if grad_out.shape[2:] != (oh, ow):
        raise EngineError(f"grad_out must have spatial shape {(oh, ow)}, got {grad_out.shape[2:]}")
    share = grad_out / (kernel[0] * kernel[1])
    grad_x = np.zeros_like(x)
    for u, v in np.ndindex(*kernel):
        grad_x[:, :, _tap_slice(u, stride[0], oh), _tap_slice(v, stride[1], ow)] += share
    return grad_x
