"""Step-by-step traces of a convolution, a transposed convolution and a pooling: what the
arithmetic pages animate, one output (or input) cell at a time.

Positions are ``[r, c]`` grid coordinates; each step lists every kernel tap's position and product,
so that a page only draws what the engine computed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine._checks import pair
from engine.conv import IntOrPair, conv2d, conv_transpose2d, conv_windows
from engine.errors import EngineError
from engine.padding import pad2d
from engine.pool import avg_pool2d, max_pool2d


def window_positions(
    out_h: int, out_w: int, kernel: tuple[int, ...], stride: IntOrPair, dilation: IntOrPair
) -> np.ndarray:
    """(OH, OW, KH*KW, 2): the padded-frame ``[i*SH + u*DH, j*SW + v*DW]`` of every tap of every window."""
    (sh, sw), (dh, dw) = pair(stride), pair(dilation)
    i, j, u, v = np.meshgrid(
        np.arange(out_h), np.arange(out_w), np.arange(kernel[0]), np.arange(kernel[1]), indexing="ij"
    )
    return np.stack([i * sh + u * dh, j * sw + v * dw], axis=-1).reshape(out_h, out_w, -1, 2)


def clean(values: np.ndarray | float) -> np.ndarray:
    """Rounds away float noise so that whole numbers print as whole numbers (4.0, not 3.9999999)."""
    return np.round(np.asarray(values, dtype=np.float64), 10)


@dataclass(frozen=True)
class ConvTrace:
    """``output`` (OH, OW); ``padded_input`` (C, H+2P, W+2P); per output cell (i, j) in row order:
    ``positions`` (OH, OW, C*KH*KW... per channel KH*KW, 2), ``products`` (OH, OW, C*KH*KW)."""

    output: np.ndarray
    padded_input: np.ndarray
    positions: np.ndarray
    products: np.ndarray


def trace_conv2d(
    x: np.ndarray,
    kernel: np.ndarray,
    bias: float = 0.0,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    padding_mode: str = "zeros",
) -> ConvTrace:
    """One filter over a (C, H, W) grid: its output, and every output cell's taps and products.

    ``products[i, j]`` lists ``x_padded[c, i*S + u*D, j*S + v*D] * kernel[c, u, v]`` channel by channel
    (c, then u, then v); with the bias (and, for partial padding, the re-weighting) they make ``output[i, j]``.
    """
    if x.ndim != 3 or kernel.ndim != 3:
        raise EngineError(f"trace_conv2d takes x (C, H, W) and kernel (C, KH, KW), got {x.shape} and {kernel.shape}")
    if kernel.shape[0] != x.shape[0]:
        raise EngineError(
            f"kernel has {kernel.shape[0]} channels but input has {x.shape[0]}: a filter always "
            "extends the full depth of the input"
        )
    out = conv2d(x[None], kernel[None], np.array([bias]), stride, padding, dilation, padding_mode)[0, 0]
    xp = pad2d(x[None], pair(padding), padding_mode)[0]
    windows = conv_windows(xp[None], kernel.shape[1:], pair(stride), pair(dilation))[0]
    # c i j u v -> i j c u v: each cell's products, channel by channel
    products = (windows * kernel[:, None, None]).transpose(1, 2, 0, 3, 4).reshape(*out.shape, -1)
    positions = window_positions(out.shape[0], out.shape[1], kernel.shape[1:], stride, dilation)
    return ConvTrace(clean(out), xp, positions, clean(products))


@dataclass(frozen=True)
class TransposedTrace:
    """``output`` (OH, OW); per input cell (i, j): ``positions`` (H, W, KH*KW, 2) in output coordinates
    (outside the output where padding crops it) and ``products`` (H, W, KH*KW) = x[i, j] * kernel."""

    output: np.ndarray
    positions: np.ndarray
    products: np.ndarray


def trace_conv_transpose2d(
    x: np.ndarray, kernel: np.ndarray, bias: float = 0.0, stride: int = 1, padding: int = 0, dilation: int = 1
) -> TransposedTrace:
    """Each input cell of a (H, W) grid scatters ``x[i, j] * kernel`` onto the output at
    ``(i*S + u*D - P, j*S + v*D - P)``: the output, and every cell's scatter."""
    if x.ndim != 2 or kernel.ndim != 2:
        raise EngineError("transposed convolution takes a 2-D input and a 2-D kernel here")
    out = conv_transpose2d(x[None, None], kernel[None, None], np.array([bias]), stride, padding, dilation)[0, 0]
    positions = window_positions(x.shape[0], x.shape[1], kernel.shape, stride, dilation) - padding
    products = x[:, :, None] * kernel.reshape(-1)[None, None]
    return TransposedTrace(clean(out), positions, clean(products))


@dataclass(frozen=True)
class DirectTrace:
    """A transposed convolution written as a direct one: ``input`` is x with S - 1 zeros between its cells
    and ``padding`` = D(F-1) - P zeros around them, read by ``kernel`` (the kernel turned 180°) at stride 1
    and dilation D; ``trace`` is that convolution cell by cell (its output equals the transposed one's)."""

    input: np.ndarray
    padding: int
    kernel: np.ndarray
    trace: ConvTrace


def direct_view_of_transposed(
    x: np.ndarray, kernel: np.ndarray, bias: float = 0.0, stride: int = 1, padding: int = 0, dilation: int = 1
) -> DirectTrace | None:
    """The direct view of :func:`trace_conv_transpose2d`'s layer, or None when P > D(F-1) (the view would
    need negative padding, a crop)."""
    if x.ndim != 2 or kernel.ndim != 2:
        raise EngineError("transposed convolution takes a 2-D input and a 2-D kernel here")
    q = dilation * (kernel.shape[0] - 1) - padding
    if q < 0 or dilation * (kernel.shape[1] - 1) - padding < 0:
        return None
    h, w = (x.shape[0] - 1) * stride + 1, (x.shape[1] - 1) * stride + 1
    inserted = np.zeros((h + 2 * q, w + 2 * q), dtype=np.float64)
    inserted[q : q + h : stride, q : q + w : stride] = x
    flipped = kernel[::-1, ::-1]
    trace = trace_conv2d(inserted[None], flipped[None], bias, 1, 0, dilation)
    return DirectTrace(inserted, q, flipped, trace)


@dataclass(frozen=True)
class PoolTrace:
    """``output`` (OH, OW); per output cell: ``positions`` (OH, OW, K*K, 2), ``values`` (OH, OW, K*K) and,
    for max pooling, ``winners`` (OH, OW, 2): the cell the engine picked (the first maximum, as PyTorch)."""

    output: np.ndarray
    positions: np.ndarray
    values: np.ndarray
    winners: np.ndarray | None


def trace_pool2d(
    x: np.ndarray, kernel_size: IntOrPair, stride: IntOrPair | None = None, mode: str = "max"
) -> PoolTrace:
    """Max or average pooling of a (H, W) grid (sizes an int or (height, width)), with every window's cells."""
    if mode not in ("max", "avg"):
        raise EngineError(f"mode must be max or avg, got {mode!r}")
    kernel = pair(kernel_size)
    strides = kernel if stride is None else pair(stride)
    reduce = max_pool2d if mode == "max" else avg_pool2d
    out = reduce(x[None, None], kernel, strides)[0, 0]
    values = conv_windows(x[None, None], kernel, strides, (1, 1))[0, 0].reshape(*out.shape, -1)
    positions = window_positions(out.shape[0], out.shape[1], kernel, strides, 1)
    winners = None
    if mode == "max":
        pick = values.argmax(axis=-1)
        winners = np.take_along_axis(positions, pick[:, :, None, None], axis=2)[:, :, 0]
    return PoolTrace(clean(out), positions, clean(values), winners)
