"""The network's fast path: convolution and pooling on channels-last batches (N, H, W, C).

:mod:`engine.conv` and :mod:`engine.pool` are the reference ops, in PyTorch's (N, C, H, W) layout, and
what the app's single-layer views call. A whole network runs faster with the channels last:

- a kernel window of an (N, H, W, C) input is KH runs of KW*C contiguous numbers, so im2col copies
  long runs instead of the OW-long rows that (N, C, H, W) gives;
- the matrix product ``columns (N*OH*OW, KH*KW*C) @ weights (KH*KW*C, F)`` comes out as (N, OH, OW, F)
  directly: no transpose after every layer, forward or backward;
- the columns are built and multiplied a few pictures at a time, so that they are still in the
  core's cache when the product reads them (measured 1.2-2x faster than one im2col matrix per batch).

The formulas are those of :func:`engine.conv.conv2d`; only the order of the axes differs. Only zero
padding runs here; :mod:`engine.network` hands the other modes to :mod:`engine.conv`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from engine._checks import Pair, effective_size, output_size

# numbers of the column matrix built per step (1 MiB of float32, half a core's L2 cache): measured
# fastest with two slices of a batch on two threads (against 256 KiB and 4 MiB), where smaller steps
# spend their time passing the GIL between the threads and larger ones go out to memory
CHUNK_ELEMENTS = 1 << 18
# dX of a stride-1 layer runs as a full correlation (one product per chunk, at the forward pass's speed)
# unless the input is this much larger than the output, when the zeros it multiplies cost more than
# the tap-by-tap adds (measured: "same" padding -> correlation, LeNet's valid 5x5 on 14x14 -> taps)
FULL_CORRELATION_AREA = 1.5
# below this many numbers per row of columns (KW*C), copying rows of (N, C, H, W)-like "taps" is faster
SHORT_RUN = 16


@dataclass(frozen=True)
class ConvGeometry:
    """One convolution's sizes: the kernel (KH, KW), stride, zero padding and dilation, each (h, w)."""

    kernel: Pair
    stride: Pair
    padding: Pair
    dilation: Pair

    def output_hw(self, h: int, w: int) -> Pair:
        """``OH = floor((H + 2P - D(K-1) - 1) / S) + 1``, likewise OW."""
        k, s, p, d = self.kernel, self.stride, self.padding, self.dilation
        return (output_size(h, k[0], s[0], p[0], d[0]), output_size(w, k[1], s[1], p[1], d[1]))


def to_channels_last(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N, H, W, C), contiguous (a free reshape when C is 1)."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def to_channels_first(x: np.ndarray) -> np.ndarray:
    """(N, H, W, C) -> (N, C, H, W), contiguous."""
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def flat_weights(weight: np.ndarray) -> np.ndarray:
    """Conv weights (F, C, KH, KW) -> (KH*KW*C, F), rows in the order of a window's numbers."""
    f = weight.shape[0]
    return np.ascontiguousarray(weight.transpose(2, 3, 1, 0).reshape(-1, f))


def _windows(x: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    """Every window of ``x`` (N, H, W, C) after zero padding, as a view (N, OH, OW, C, KH, KW)."""
    (ph, pw), (sh, sw), (dh, dw) = geometry.padding, geometry.stride, geometry.dilation
    if ph or pw:  # a zeroed array and one copy: several times faster than np.pad for a small batch
        n, h, w, c = x.shape
        padded = np.zeros((n, h + 2 * ph, w + 2 * pw, c), x.dtype)
        padded[:, ph : ph + h, pw : pw + w] = x
        x = padded
    span = (effective_size(geometry.kernel[0], dh), effective_size(geometry.kernel[1], dw))
    return sliding_window_view(x, span, axis=(1, 2))[:, ::sh, ::sw, :, ::dh, ::dw]


def _uses_rows(channels: int, geometry: ConvGeometry) -> bool:
    """Whether columns are built as rows (one per output cell) or as taps (one row per kernel number)."""
    return geometry.kernel[1] * channels >= SHORT_RUN


def _column_chunks(x: np.ndarray, geometry: ConvGeometry) -> Iterator[tuple[int, int, np.ndarray]]:
    """im2col a few pictures at a time: for pictures [a, b) of ``x`` (N, H, W, C), the matrix
    (windows, KH*KW*C) with one row per output cell, rows in the order of (N, OH, OW).

    Each chunk is built in the same scratch buffer (:data:`CHUNK_ELEMENTS` numbers, or one picture's),
    so it is still in the cache when the caller multiplies it, and is overwritten by the next chunk.
    When a window's rows are short (KW*C below :data:`SHORT_RUN`, a first layer on gray pictures) the
    copy runs along the picture's rows instead, and the chunk is the transpose of that (taps, windows)
    block: BLAS takes either. A pointwise conv (1x1, stride 1, no padding) needs no copy at all."""
    n, h, w, c = x.shape
    if geometry.kernel == (1, 1) and geometry.stride == (1, 1) and geometry.padding == (0, 0):
        yield 0, n, x.reshape(-1, c)  # a pointwise conv: the maps are already its columns
        return
    oh, ow = geometry.output_hw(h, w)
    windows = _windows(x, geometry)
    numbers, cells = geometry.kernel[0] * geometry.kernel[1] * c, oh * ow
    step = max(1, CHUNK_ELEMENTS // (cells * numbers))
    scratch = np.empty(min(n, step) * cells * numbers, x.dtype)
    rows = _uses_rows(c, geometry)
    for a in range(0, n, step):
        b = min(n, a + step)
        block = scratch[: (b - a) * cells * numbers]
        if rows:
            block.reshape(b - a, oh, ow, *geometry.kernel, c)[...] = windows[a:b].transpose(0, 1, 2, 4, 5, 3)
            yield a, b, block.reshape(-1, numbers)
        else:
            block.reshape(*geometry.kernel, c, b - a, oh, ow)[...] = windows[a:b].transpose(4, 5, 3, 0, 1, 2)
            yield a, b, block.reshape(numbers, -1).T


def conv2d(x: np.ndarray, weights: np.ndarray, bias: np.ndarray | None, geometry: ConvGeometry) -> np.ndarray:
    """``out[n, i, j, f] = b[f] + sum_{u,v,c} w[u, v, c, f] * xp[n, i*S + u*D, j*S + v*D, c]``.

    x: (N, H, W, C), weights: (KH*KW*C, F) from :func:`flat_weights`, bias: (F,) or None
    -> (N, OH, OW, F), ``OH = floor((H + 2P - D(KH-1) - 1) / S) + 1``.
    """
    n, h, w, _ = x.shape
    oh, ow = geometry.output_hw(h, w)
    cells = oh * ow
    out = np.empty((n * cells, weights.shape[1]), dtype=x.dtype)
    for a, b, columns in _column_chunks(x, geometry):
        product = out[a * cells : b * cells]
        np.matmul(columns, weights, out=product)
        if bias is not None:
            product += bias  # while the chunk is in the cache
    return out.reshape(n, oh, ow, -1)


def conv2d_backward(
    grad_out: np.ndarray,
    x: np.ndarray,
    weights: np.ndarray,
    geometry: ConvGeometry,
    need_input_grad: bool = True,
    need_weight_grad: bool = True,
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Gradients of :func:`conv2d`: grad_out (N, OH, OW, F), x (N, H, W, C), weights (KH*KW*C, F)
    -> grad_x (N, H, W, C), grad_weights (KH*KW*C, F), grad_bias (F,); None for grad_x without
    ``need_input_grad`` and for the other two without ``need_weight_grad`` (a frozen layer).

    ``dW = columns^T @ dOut``, with the columns rebuilt chunk by chunk rather than kept from the
    forward pass (the copy is cheaper than a trip through memory, and a training step holds less);
    ``dX`` is a full correlation (:func:`_full_correlation`) or col2im tap by tap (:func:`_add_windows_back`).
    """
    n, oh, ow, f = grad_out.shape
    flat_grad = grad_out.reshape(-1, f)
    grad_weights = grad_bias = None
    if need_weight_grad:
        grad_weights = np.zeros(weights.shape, dtype=x.dtype)
        cells = oh * ow
        for a, b, columns in _column_chunks(x, geometry):
            grad_weights += columns.T @ flat_grad[a * cells : b * cells]
        # a product: sum(axis=0) of a narrow matrix is slow
        grad_bias = np.ones(len(flat_grad), flat_grad.dtype) @ flat_grad
    if not need_input_grad:
        return None, grad_weights, grad_bias
    h, w = x.shape[1:3]
    if geometry.stride == (1, 1) and h * w <= FULL_CORRELATION_AREA * oh * ow:
        return _full_correlation(grad_out, weights, geometry), grad_weights, grad_bias
    return _add_windows_back(flat_grad, weights, x.shape, geometry), grad_weights, grad_bias


def _full_correlation(grad_out: np.ndarray, weights: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    """dX of a stride-1 convolution as the "full" correlation of ``dOut`` with the kernel turned by 180
    degrees, whose channels swap roles, (KH*KW*F, C): ``dOut`` padded by D(K-1) - P (cropped where that is
    negative) runs through :func:`conv2d` itself."""
    (kh, kw), (dh, dw), (ph, pw) = geometry.kernel, geometry.dilation, geometry.padding
    f = grad_out.shape[3]
    turned = weights.reshape(kh, kw, -1, f)[::-1, ::-1].transpose(0, 1, 3, 2).reshape(kh * kw * f, -1)
    edge = (dh * (kh - 1) - ph, dw * (kw - 1) - pw)
    crop = (max(0, -edge[0]), max(0, -edge[1]))
    grad = grad_out[:, crop[0] : grad_out.shape[1] - crop[0], crop[1] : grad_out.shape[2] - crop[1]]
    full = ConvGeometry((kh, kw), (1, 1), (max(0, edge[0]), max(0, edge[1])), (dh, dw))
    return conv2d(np.ascontiguousarray(grad), np.ascontiguousarray(turned), None, full)


def _add_windows_back(
    flat_grad: np.ndarray, weights: np.ndarray, x_shape: tuple[int, ...], geometry: ConvGeometry
) -> np.ndarray:
    """dX, one kernel tap at a time: tap (u, v) sent ``dOut (N*OH*OW, F) @ w[u, v] (F, C)`` to the input cells
    it read, ``xp[n, i*S + u*D, j*S + v*D, :]``; overlapping windows sum. At stride 1 each tap's cells are
    one contiguous run of OW*C numbers per row, so the add streams; no (N*OH*OW, KH*KW*C) matrix is made."""
    n, h, w, c = x_shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = geometry.kernel, geometry.stride, geometry.padding, geometry.dilation
    oh, ow = geometry.output_hw(h, w)
    per_tap = weights.reshape(kh, kw, c, -1)
    padded = np.zeros((n, h + 2 * ph, w + 2 * pw, c), flat_grad.dtype)
    sent = np.empty((flat_grad.shape[0], c), flat_grad.dtype)
    for u in range(kh):
        rows = slice(u * dh, u * dh + sh * (oh - 1) + 1, sh)
        for v in range(kw):
            np.matmul(flat_grad, per_tap[u, v].T, out=sent)
            padded[:, rows, v * dw : v * dw + sw * (ow - 1) + 1 : sw] += sent.reshape(n, oh, ow, c)
    return padded if ph == pw == 0 else np.ascontiguousarray(padded[:, ph : ph + h, pw : pw + w])


# -- pooling, each channel on its own ---------------------------------------------------------------


def _pool_taps(x: np.ndarray, kernel: Pair, stride: Pair) -> Iterator[tuple[tuple[slice, slice], np.ndarray]]:
    """For each kernel tap (u, v): the input rows and columns it reads across all windows, and that
    strided view of ``x`` (N, OH, OW, C)."""
    oh, ow = (output_size(x.shape[1 + a], kernel[a], stride[a], 0, 1) for a in (0, 1))
    for u in range(kernel[0]):
        for v in range(kernel[1]):
            where = (
                slice(u, u + stride[0] * (oh - 1) + 1, stride[0]),
                slice(v, v + stride[1] * (ow - 1) + 1, stride[1]),
            )
            yield where, x[:, where[0], where[1]]


def max_pool2d(
    x: np.ndarray, kernel: Pair, stride: Pair, keep_winners: bool = False
) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
    """``out[n, i, j, c] = max_{u,v} x[n, i*SH + u, j*SW + v, c]``; (N, H, W, C) -> (N, OH, OW, C).

    With ``keep_winners``, also which input won each window, for :func:`max_pool2d_backward`: the first
    in reading order on ties, as PyTorch picks (a later one must be strictly larger to win).
    """
    if stride != kernel:
        return _max_pool_taps(x, kernel, stride, keep_winners)
    # windows that tile the input: the maximum of each row's piece first, then of those rows
    windows = _tiles(x, kernel)  # (N, OH, KH, OW, KW, C)
    row_best, column = _first_maximum(windows, axis=4, keep=keep_winners)
    out, row = _first_maximum(row_best, axis=2, keep=keep_winners)
    if column is None or row is None:
        return out, None
    return out, (column, row)


def _tiles(x: np.ndarray, kernel: Pair) -> np.ndarray:
    """(N, H, W, C) -> the view (N, OH, KH, OW, KW, C) of its non-overlapping KHxKW windows (a border
    that fills no whole window is left out, as floor division of the output size says)."""
    n, h, w, c = x.shape
    oh, ow = h // kernel[0], w // kernel[1]
    return x[:, : oh * kernel[0], : ow * kernel[1]].reshape(n, oh, kernel[0], ow, kernel[1], c)


def _first_maximum(values: np.ndarray, axis: int, keep: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """The maximum along ``axis`` and, with ``keep``, the first index holding it (uint8)."""
    pieces = [values[(slice(None),) * axis + (k,)] for k in range(values.shape[axis])]
    best = pieces[0].copy()
    index = None
    for k, piece in enumerate(pieces[1:], start=1):
        if keep:
            larger = np.greater(piece, best)
            # a bool is one byte 0 or 1: for the second piece, the comparison is the index
            index = larger.view(np.uint8) if index is None else np.where(larger, np.uint8(k), index)
        np.maximum(best, piece, out=best)
    if keep and index is None:
        index = np.zeros(best.shape, np.uint8)
    return best, index


def max_pool2d_backward(
    grad_out: np.ndarray, winners: tuple[np.ndarray, ...], x_shape: tuple[int, ...], kernel: Pair, stride: Pair
) -> np.ndarray:
    """Gradient of :func:`max_pool2d`: each window's gradient goes to the input that won it;
    (N, OH, OW, C) -> (N, H, W, C)."""
    if stride != kernel:
        return _max_pool_taps_backward(grad_out, winners[0], x_shape, kernel, stride)
    column, row = winners
    grad_x = np.zeros(x_shape, grad_out.dtype)
    tiles = _tiles(grad_x, kernel)
    for u in range(kernel[0]):
        to_row = grad_out * (row == u)
        for v in range(kernel[1]):
            np.multiply(to_row, column[:, :, u] == v, out=tiles[:, :, u, :, v])
    return grad_x


def _max_pool_taps(
    x: np.ndarray, kernel: Pair, stride: Pair, keep_winners: bool
) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
    """:func:`max_pool2d` for overlapping or gapped windows: a running maximum over the KH*KW taps, and
    the winning tap (u*KW + v)."""
    taps = _pool_taps(x, kernel, stride)
    out = next(taps)[1].copy()
    winners = np.zeros(out.shape, np.uint8) if keep_winners else None
    for index, (_, tap) in enumerate(taps, start=1):
        if winners is not None:
            winners = np.where(tap > out, np.uint8(index), winners)
        np.maximum(out, tap, out=out)
    return out, ((winners,) if winners is not None else None)


def _max_pool_taps_backward(
    grad_out: np.ndarray, winners: np.ndarray, x_shape: tuple[int, ...], kernel: Pair, stride: Pair
) -> np.ndarray:
    grad_x = np.zeros(x_shape, grad_out.dtype)
    for index, (where, _) in enumerate(_pool_taps(grad_x, kernel, stride)):
        grad_x[:, where[0], where[1]] += grad_out * (winners == index)
    return grad_x


def avg_pool2d(x: np.ndarray, kernel: Pair, stride: Pair) -> np.ndarray:
    """``out[n, i, j, c] = mean_{u,v} x[n, i*SH + u, j*SW + v, c]``; (N, H, W, C) -> (N, OH, OW, C)."""
    taps = _pool_taps(x, kernel, stride)
    out = next(taps)[1].copy()
    for _, tap in taps:
        out += tap
    out *= out.dtype.type(1 / (kernel[0] * kernel[1]))
    return out


def avg_pool2d_backward(grad_out: np.ndarray, x_shape: tuple[int, ...], kernel: Pair, stride: Pair) -> np.ndarray:
    """Gradient of :func:`avg_pool2d`: each window's gradient is shared equally by its cells."""
    share = grad_out * grad_out.dtype.type(1 / (kernel[0] * kernel[1]))
    grad_x = np.zeros(x_shape, grad_out.dtype)
    for where, _ in _pool_taps(grad_x, kernel, stride):
        grad_x[:, where[0], where[1]] += share
    return grad_x
