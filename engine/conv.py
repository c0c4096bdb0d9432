"""2-D convolution (cross-correlation), its backward pass, and transposed convolution.

Shapes, with PyTorch's conventions:

- ``x``: (N, C, H, W) — batch, channels, height, width
- ``weight``: (F, C, KH, KW) for ``conv2d``; (C_in, C_out, KH, KW) for ``conv_transpose2d``
- output height ``OH = floor((H + 2*PH - DH*(KH-1) - 1) / SH) + 1``, likewise for the width

The fast path is im2col: every kernel window becomes one column of a matrix
(a strided *view* of the padded input, copied once into contiguous memory),
and the whole layer is then a single matrix product with the flattened filters.
The backward pass is the same product transposed, followed by ``col2im``,
which adds every window back onto the input positions it came from.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from engine._checks import Pair, as_float_array, as_pair, check_fits, effective_size, output_size
from engine.errors import EngineError
from engine.padding import check_padding_mode, pad2d, pad2d_backward, partial_conv_ratio

IntOrPair = int | Sequence[int]

# Largest im2col matrix conv2d builds at once (16 MiB of float32, so that a few requests at once stay
# small; measured as fast as 64 MiB bands); LeNet's layers fit whole.
IM2COL_MAX_ELEMENTS = 1 << 22


def conv_windows(xp: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair) -> np.ndarray:
    """All kernel windows of a padded input, as a view (N, C, OH, OW, KH, KW).

    ``windows[n, c, i, j, u, v] = xp[n, c, i*SH + u*DH, j*SW + v*DW]``; no data is copied.
    """
    span = (effective_size(kernel[0], dilation[0]), effective_size(kernel[1], dilation[1]))
    view = sliding_window_view(xp, span, axis=(2, 3))
    return view[:, :, :: stride[0], :: stride[1], :: dilation[0], :: dilation[1]]


def im2col(xp: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair) -> np.ndarray:
    """Padded input (N, C, Hp, Wp) -> matrix (C*KH*KW, N*OH*OW), one column per window.

    Rows follow ``weight.reshape(F, -1)``, so ``weight.reshape(F, -1) @ im2col(...)`` is the whole
    convolution. Copying in this order (c u v n i j) moves long contiguous runs of each input row;
    putting the window axes last instead gathers 5-float pieces and is several times slower.
    """
    return windows_to_columns(conv_windows(xp, kernel, stride, dilation))


def windows_to_columns(windows: np.ndarray) -> np.ndarray:
    """Windows (N, C, OH, OW, KH, KW) -> (C*KH*KW, N*OH*OW): the copy at the heart of im2col."""
    n, c, oh, ow, kh, kw = windows.shape
    return windows.transpose(1, 4, 5, 0, 2, 3).reshape(c * kh * kw, n * oh * ow)


def col2im(windows: np.ndarray, padded_shape: tuple[int, ...], stride: Pair, dilation: Pair) -> np.ndarray:
    """Inverse of :func:`conv_windows`: adds each window (N, C, OH, OW, KH, KW) back
    onto the padded input positions it covers, giving (N, C, Hp, Wp).

    Overlapping windows sum, which is exactly the gradient of im2col. The loop runs
    over the KH*KW kernel taps, each one a strided slice covering every output.
    """
    _, _, oh, ow, kh, kw = windows.shape
    out = np.zeros(padded_shape, dtype=windows.dtype)
    (sh, sw), (dh, dw) = stride, dilation
    for u in range(kh):
        rows = slice(u * dh, u * dh + sh * (oh - 1) + 1, sh)
        for v in range(kw):
            cols = slice(v * dw, v * dw + sw * (ow - 1) + 1, sw)
            out[:, :, rows, cols] += windows[:, :, :, :, u, v]
    return out


ConvArgs = tuple[np.ndarray, np.ndarray, np.ndarray | None, Pair, Pair, Pair, Pair]


def _conv_args(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    stride: IntOrPair,
    padding: IntOrPair,
    dilation: IntOrPair,
    *,
    transposed: bool = False,
) -> ConvArgs:
    """Checks and normalizes the arguments shared by conv2d, its backward and conv_transpose2d."""
    layout = "(C_in, C_out, KH, KW)" if transposed else "(F, C, KH, KW)"
    in_axis, out_axis = (0, 1) if transposed else (1, 0)
    x = as_float_array(x, "x (N, C, H, W)", 4)
    weight = as_float_array(weight, f"weight {layout}", 4)
    dtype = np.result_type(x, weight)
    x, weight = x.astype(dtype, copy=False), weight.astype(dtype, copy=False)
    if weight.shape[in_axis] != x.shape[1]:
        raise EngineError(
            f"weight has {weight.shape[in_axis]} input channels but x has {x.shape[1]}: "
            f"weight must be {layout} with its input channels equal to x's channel count"
        )
    if bias is not None:
        bias = as_float_array(bias, "bias", 1).astype(dtype, copy=False)
        if bias.shape[0] != weight.shape[out_axis]:
            raise EngineError(
                f"bias must have {weight.shape[out_axis]} values (one per output channel), got {bias.shape[0]}"
            )
    stride = as_pair(stride, "stride", minimum=1)
    padding = as_pair(padding, "padding", minimum=0)
    dilation = as_pair(dilation, "dilation", minimum=1)
    kernel = (weight.shape[2], weight.shape[3])
    if min(kernel) < 1:
        raise EngineError(f"kernel must be at least 1x1, got {kernel[0]}x{kernel[1]}")
    if not transposed:
        check_fits((x.shape[2], x.shape[3]), kernel, padding, dilation)
    return x, weight, bias, stride, padding, dilation, kernel


def conv2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """Cross-correlation ``out[n, f, i, j] = b[f] + sum_{c,u,v} w[f, c, u, v] * xp[n, c, i*S + u*D, j*S + v*D]``.

    x: (N, C, H, W), weight: (F, C, KH, KW), bias: (F,) or None -> (N, F, OH, OW),
    ``OH = floor((H + 2P - D(KH-1) - 1) / S) + 1``. ``padding_mode`` is one of
    zeros, reflect, replicate, circular, partial (see :mod:`engine.padding`).
    """
    x, weight, bias, stride, padding, dilation, kernel = _conv_args(x, weight, bias, stride, padding, dilation)
    oh, ow = _output_hw(x, kernel, stride, padding, dilation, padding_mode)
    n, f = x.shape[0], weight.shape[0]
    windows = conv_windows(pad2d(x, padding, padding_mode), kernel, stride, dilation)
    flat_weight = weight.reshape(f, -1)
    out = np.empty((f, n, oh, ow), dtype=x.dtype)
    # im2col inflates the input KH*KW times: a 15x15 kernel on a large photo would need
    # gigabytes at once, so the matrix is built for a band of output rows at a time
    rows = max(1, IM2COL_MAX_ELEMENTS // (flat_weight.shape[1] * n * ow))
    for r0 in range(0, oh, rows):
        band = windows[:, :, r0 : r0 + rows]
        # f (c u v), (c u v) (n i j) -> f (n i j)
        out[:, :, r0 : r0 + rows] = (flat_weight @ windows_to_columns(band)).reshape(f, n, band.shape[2], ow)
    return _finish(out, x, bias, kernel, stride, padding, dilation, padding_mode)


def _output_hw(
    x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, padding_mode: str
) -> tuple[int, int]:
    """The output's (OH, OW), after checking the padding mode against the input."""
    spatial = (x.shape[2], x.shape[3])
    check_padding_mode(padding_mode, padding, spatial)
    oh, ow = (output_size(spatial[a], kernel[a], stride[a], padding[a], dilation[a]) for a in (0, 1))
    return oh, ow


def _finish(
    out: np.ndarray,
    x: np.ndarray,
    bias: np.ndarray | None,
    kernel: Pair,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
    padding_mode: str,
) -> np.ndarray:
    """(F, N, OH, OW) products -> (N, F, OH, OW) with partial padding's re-weighting and the bias added."""
    if padding_mode == "partial":
        out *= partial_conv_ratio((x.shape[2], x.shape[3]), kernel, stride, padding, dilation).astype(out.dtype)
    if bias is None:
        return np.ascontiguousarray(out.transpose(1, 0, 2, 3))
    # the bias is added while the (F, N) axes are swapped: one pass over the output instead of two
    result = np.empty((out.shape[1], out.shape[0], *out.shape[2:]), dtype=out.dtype)
    np.add(out.transpose(1, 0, 2, 3), bias[None, :, None, None], out=result)
    return result


def conv2d_with_columns(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    padding_mode: str = "zeros",
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`conv2d`, and the im2col columns of its padded input, (C*KH*KW, N*OH*OW), built once for the
    whole batch: a training step keeps them, and :func:`conv2d_backward` takes them for dW."""
    x, weight, bias, stride, padding, dilation, kernel = _conv_args(x, weight, bias, stride, padding, dilation)
    oh, ow = _output_hw(x, kernel, stride, padding, dilation, padding_mode)
    n, f = x.shape[0], weight.shape[0]
    columns = im2col(pad2d(x, padding, padding_mode), kernel, stride, dilation)
    out = (weight.reshape(f, -1) @ columns).reshape(f, n, oh, ow)
    return _finish(out, x, bias, kernel, stride, padding, dilation, padding_mode), columns


def conv2d_backward(
    grad_out: np.ndarray,
    x: np.ndarray,
    weight: np.ndarray,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    padding_mode: str = "zeros",
    columns: np.ndarray | None = None,
    need_input_grad: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`conv2d` (bias included) in every padding mode.

    grad_out: (N, F, OH, OW), x: (N, C, H, W), weight: (F, C, KH, KW)
    -> grad_x (N, C, H, W), grad_weight (F, C, KH, KW), grad_bias (F,).

    ``columns``, if given, is ``im2col`` of the padded input that the forward pass built, saving
    the copy; ``need_input_grad=False`` skips grad_x (a network's first layer has no use for it)
    and returns an empty array in its place. Partial padding scales each output by its ratio, so
    the gradient is scaled alike; the copying modes fold the border's gradient back onto the cells
    it copied.
    """
    x, weight, _, stride, padding, dilation, kernel = _conv_args(x, weight, None, stride, padding, dilation)
    n, c, h, w = x.shape
    check_padding_mode(padding_mode, padding, (h, w))
    f = weight.shape[0]
    oh, ow = (output_size((h, w)[a], kernel[a], stride[a], padding[a], dilation[a]) for a in (0, 1))
    grad_out = np.asarray(grad_out, dtype=x.dtype)
    if grad_out.shape != (n, f, oh, ow):
        raise EngineError(f"grad_out must have shape {(n, f, oh, ow)}, got {grad_out.shape}")

    grad_bias = grad_out.sum(axis=(0, 2, 3))
    if padding_mode == "partial":
        grad_out = grad_out * partial_conv_ratio((h, w), kernel, stride, padding, dilation).astype(x.dtype)
    padded_shape = (n, c, h + 2 * padding[0], w + 2 * padding[1])
    if columns is None:
        columns = im2col(pad2d(x, padding, padding_mode), kernel, stride, dilation)
    g = grad_out.transpose(1, 0, 2, 3).reshape(f, n * oh * ow)  # columns match im2col's columns
    grad_weight = (columns @ g.T).T.reshape(weight.shape)  # measured faster than g @ columns.T
    if not need_input_grad:
        return np.empty((0,), x.dtype), grad_weight, grad_bias
    # (c u v) f, f (n i j) -> (c u v) (n i j), viewed as n c i j u v for col2im
    grad_windows = (weight.reshape(f, -1).T @ g).reshape(c, *kernel, n, oh, ow).transpose(3, 0, 4, 5, 1, 2)
    grad_x = pad2d_backward(col2im(grad_windows, padded_shape, stride, dilation), padding, padding_mode)
    return np.ascontiguousarray(grad_x), grad_weight, grad_bias


def conv_transpose2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    output_padding: IntOrPair = 0,
) -> np.ndarray:
    """Transposed convolution: every input cell scatters ``x[n, c, i, j] * w[c, :, :, :]``
    onto the output at ``(i*S + u*D - P, j*S + v*D - P)``.

    x: (N, C_in, H, W), weight: (C_in, C_out, KH, KW), bias: (C_out,) or None
    -> (N, C_out, OH, OW) with ``OH = (H - 1)*S - 2P + D(KH-1) + output_padding + 1``.
    It is the gradient of :func:`conv2d` with respect to its input.
    """
    x, weight, bias, stride, padding, dilation, (kh, kw) = _conv_args(
        x, weight, bias, stride, padding, dilation, transposed=True
    )
    output_padding = as_pair(output_padding, "output_padding", minimum=0)
    n, c_in, h, w = x.shape
    c_out = weight.shape[1]
    for axis in (0, 1):
        limit = max(stride[axis], dilation[axis])
        if output_padding[axis] >= limit:
            raise EngineError(
                f"output_padding must be smaller than stride or dilation ({limit}), got {output_padding[axis]}"
            )
    full = tuple(
        (size - 1) * stride[a] + effective_size(k, dilation[a]) + output_padding[a]
        for a, size, k in ((0, h, kh), (1, w, kw))
    )
    oh, ow = full[0] - 2 * padding[0], full[1] - 2 * padding[1]
    if oh < 1 or ow < 1:
        raise EngineError(
            f"padding {padding} removes the whole output ({full[0]}x{full[1]} before cropping); use less padding"
        )
    windows = (x.transpose(0, 2, 3, 1).reshape(-1, c_in) @ weight.reshape(c_in, -1)).reshape(n, h, w, c_out, kh, kw)
    out = col2im(windows.transpose(0, 3, 1, 2, 4, 5), (n, c_out, *full), stride, dilation)
    out = out[:, :, padding[0] : padding[0] + oh, padding[1] : padding[1] + ow]
    if bias is not None:
        out = out + bias[None, :, None, None]
    return np.ascontiguousarray(out)
