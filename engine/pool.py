"""Max and average pooling over (N, C, H, W), each channel on its own.

``OH = floor((H - KH) / SH) + 1``; the stride defaults to the kernel size, so
the common 2x2 pooling halves the height and width.
"""

from __future__ import annotations

import numpy as np

from engine._checks import as_float_array, as_pair, check_fits, output_size
from engine.conv import IntOrPair, col2im, conv_windows
from engine.errors import EngineError


def _pool_args(x, kernel_size, stride):
    x = as_float_array(x, "x (N, C, H, W)", 4)
    kernel = as_pair(kernel_size, "kernel_size", minimum=1)
    stride = kernel if stride is None else as_pair(stride, "stride", minimum=1)
    check_fits((x.shape[2], x.shape[3]), kernel, (0, 0), (1, 1), what="kernel_size")
    return x, kernel, stride


def _tiles(x: np.ndarray, kernel, stride) -> np.ndarray | None:
    """Fast path: when windows tile the input exactly, a reshape gives (N, C, OH, OW, KH*KW)."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    if (kh, kw) != (sh, sw) or h % kh or w % kw:
        return None
    tiles = x.reshape(n, c, h // kh, kh, w // kw, kw).transpose(0, 1, 2, 4, 3, 5)
    return tiles.reshape(n, c, h // kh, w // kw, kh * kw)


def _windows(x, kernel, stride) -> np.ndarray:
    """(N, C, OH, OW, KH*KW) copy of every pooling window."""
    tiles = _tiles(x, kernel, stride)
    if tiles is not None:
        return tiles
    windows = conv_windows(x, kernel, stride, (1, 1))
    return windows.reshape(*windows.shape[:4], kernel[0] * kernel[1])


def _taps(x: np.ndarray, kernel, stride):
    """For each kernel tap (u, v), the strided slice of ``x`` it sees across all windows: (N, C, OH, OW)."""
    oh, ow = (output_size(x.shape[2 + a], kernel[a], stride[a], 0, 1) for a in (0, 1))
    for u in range(kernel[0]):
        for v in range(kernel[1]):
            yield x[:, :, u : u + stride[0] * (oh - 1) + 1 : stride[0], v : v + stride[1] * (ow - 1) + 1 : stride[1]]


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
    grad_out: np.ndarray, x: np.ndarray, kernel_size: IntOrPair, stride: IntOrPair | None = None
) -> np.ndarray:
    """Gradient of :func:`max_pool2d`: each output's gradient goes to the input that was the
    maximum of its window (the first one on ties, as in PyTorch); (N, C, OH, OW) -> (N, C, H, W)."""
    x, kernel, stride = _pool_args(x, kernel_size, stride)
    windows = _windows(x, kernel, stride)
    winner = windows.argmax(axis=-1)
    routed = (np.arange(windows.shape[-1]) == winner[..., None]) * np.asarray(grad_out, x.dtype)[..., None]
    return _scatter(routed, x.shape, kernel, stride)


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
    area = kernel[0] * kernel[1]
    share = np.asarray(grad_out, x.dtype)[..., None] / area
    return _scatter(np.broadcast_to(share, (*share.shape[:4], area)), x.shape, kernel, stride)


def _scatter(per_tap: np.ndarray, shape, kernel, stride) -> np.ndarray:
    """Adds per-window values (N, C, OH, OW, KH*KW) back onto the input grid (N, C, H, W)."""
    n, c, oh, ow, _ = per_tap.shape
    expected = tuple(output_size(shape[2 + a], kernel[a], stride[a], 0, 1) for a in (0, 1))
    if (oh, ow) != expected:
        raise EngineError(f"grad_out must have spatial shape {expected}, got {(oh, ow)}")
    return col2im(per_tap.reshape(n, c, oh, ow, *kernel), shape, stride, (1, 1))
