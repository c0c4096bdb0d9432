"""Grouped and depthwise convolution on channels-last batches (N, H, W, C), beside their backward pass.

With ``groups = G`` the C input channels and F filters split into G groups; filter group g sees only
input group g, so a filter has ``C/G * KH * KW`` weights (PyTorch's ``(F, C/G, KH, KW)``):

    out[n, i, j, g*F/G + m] = b[g*F/G + m]
        + sum_{u, v, c} w[g*F/G + m, c, u, v] * xp[n, i*S + u*D, j*S + v*D, g*C/G + c]

``groups = C`` is a depthwise convolution: each channel filtered on its own (MobileNet's first half of a
depthwise-separable block; a 1x1 conv mixes the channels after). Two vectorised paths, no loop over
channels or groups: one input channel a group runs tap by tap, each tap a multiply-add over the whole
batch; wider groups build each group's im2col matrix and multiply all groups at once (a batched product).
"""

from __future__ import annotations

import numpy as np

from engine.channels_last import ConvGeometry, _windows

# numbers of the grouped column matrix built per step (4 MiB of float32)
CHUNK_ELEMENTS = 1 << 20


def _tap_slices(geometry: ConvGeometry, oh: int, ow: int) -> list[tuple[int, int, slice, slice]]:
    """For each kernel tap (u, v), the rows and columns of the padded input it reads across all windows."""
    (kh, kw), (sh, sw), (dh, dw) = geometry.kernel, geometry.stride, geometry.dilation
    return [
        (u, v, slice(u * dh, u * dh + sh * (oh - 1) + 1, sh), slice(v * dw, v * dw + sw * (ow - 1) + 1, sw))
        for u in range(kh)
        for v in range(kw)
    ]


def _padded(x: np.ndarray, padding: tuple[int, int]) -> np.ndarray:
    ph, pw = padding
    if not (ph or pw):
        return x
    n, h, w, c = x.shape
    out = np.zeros((n, h + 2 * ph, w + 2 * pw, c), x.dtype)
    out[:, ph : ph + h, pw : pw + w] = x
    return out


def grouped_conv2d(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, geometry: ConvGeometry, groups: int
) -> np.ndarray:
    """x (N, H, W, C), weight (F, C/G, KH, KW), bias (F,) or None -> (N, OH, OW, F); formula above."""
    n, h, w, c = x.shape
    f = weight.shape[0]
    oh, ow = geometry.output_hw(h, w)
    if weight.shape[1] == 1:  # one input channel a group: tap by tap
        out = _tap_by_tap(x, weight, geometry, groups, (oh, ow))
    else:
        out = np.empty((n, oh, ow, f), x.dtype)
        flat = _group_weights(weight, groups)
        for a, b, columns in _group_columns(x, geometry, groups):
            out[a:b] = np.matmul(columns, flat).transpose(1, 0, 2).reshape(b - a, oh, ow, f)
    if bias is not None:
        out += bias
    return out


def _tap_by_tap(
    x: np.ndarray, weight: np.ndarray, geometry: ConvGeometry, groups: int, out_hw: tuple[int, int]
) -> np.ndarray:
    """A conv whose groups read one channel each, as a multiply-add over the whole batch per kernel tap.
    Plain depthwise (one filter a channel) runs along the channels, the contiguous axis, into one buffer."""
    n, f = len(x), weight.shape[0]
    per_group = f // groups
    xp = _padded(x, geometry.padding)
    taps = weight.reshape(groups, per_group, *geometry.kernel)
    if per_group == 1:
        # each tap's weights repeated along a row of the output: NumPy then runs whole rows (OW*C numbers)
        # in one inner loop instead of one channel vector (C numbers) at a time
        rowwise = np.ascontiguousarray(
            np.broadcast_to(taps[:, 0].transpose(1, 2, 0)[:, :, None], (*geometry.kernel, out_hw[1], f))
        )
        out, product = np.empty((n, *out_hw, f), x.dtype), np.empty((n, *out_hw, f), x.dtype)
        for k, (u, v, rows, cols) in enumerate(_tap_slices(geometry, *out_hw)):
            np.multiply(xp[:, rows, cols], rowwise[u, v], out=product if k else out)
            if k:
                out += product
        return out
    grouped = np.zeros((n, *out_hw, groups, per_group), x.dtype)
    for u, v, rows, cols in _tap_slices(geometry, *out_hw):
        grouped += xp[:, rows, cols, :, None] * taps[:, :, u, v]
    return grouped.reshape(n, *out_hw, f)


def _group_weights(weight: np.ndarray, groups: int) -> np.ndarray:
    """(F, C/G, KH, KW) -> (G, KH*KW*C/G, F/G), each group's rows in the order of its window's numbers."""
    f, cg, kh, kw = weight.shape
    return np.ascontiguousarray(weight.reshape(groups, f // groups, cg, kh, kw).transpose(0, 3, 4, 2, 1)).reshape(
        groups, kh * kw * cg, f // groups
    )


def _group_columns(x: np.ndarray, geometry: ConvGeometry, groups: int):  # type: ignore[no-untyped-def]
    """For pictures [a, b) of ``x`` (N, H, W, C) at a time: (a, b, columns (G, cells, KH*KW*C/G)), each
    group's im2col matrix, one row per output cell in (N, OH, OW) order."""
    n, h, w, c = x.shape
    oh, ow = geometry.output_hw(h, w)
    kh, kw = geometry.kernel
    windows = _windows(x, geometry)  # (N, OH, OW, C, KH, KW)
    per_picture = oh * ow * c * kh * kw
    step = max(1, CHUNK_ELEMENTS // max(per_picture, 1))
    for a in range(0, n, step):
        b = min(n, a + step)
        part = windows[a:b].reshape(b - a, oh, ow, groups, c // groups, kh, kw)
        columns = np.ascontiguousarray(part.transpose(3, 0, 1, 2, 5, 6, 4)).reshape(groups, -1, kh * kw * (c // groups))
        yield a, b, columns


def grouped_conv2d_backward(
    grad_out: np.ndarray,
    x: np.ndarray,
    weight: np.ndarray,
    geometry: ConvGeometry,
    groups: int,
    need_input_grad: bool = True,
    need_weight_grad: bool = True,
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Gradients of :func:`grouped_conv2d`: grad_out (N, OH, OW, F), x (N, H, W, C), weight (F, C/G, KH, KW)
    -> grad_x (N, H, W, C), grad_weight (F, C/G, KH, KW), grad_bias (F,); None where not needed."""
    if weight.shape[1] == 1:
        grad_x, grad_w = _depthwise_backward(grad_out, x, weight, geometry, groups, need_input_grad, need_weight_grad)
    else:
        grad_x, grad_w = _wide_backward(grad_out, x, weight, geometry, groups, need_input_grad, need_weight_grad)
    grad_b = grad_out.reshape(-1, grad_out.shape[-1]).sum(axis=0) if need_weight_grad else None
    return grad_x, grad_w, grad_b


def _depthwise_backward(
    grad_out: np.ndarray,
    x: np.ndarray,
    weight: np.ndarray,
    geometry: ConvGeometry,
    groups: int,
    need_input_grad: bool,
    need_weight_grad: bool,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    n, oh, ow, f = grad_out.shape
    per_group = f // groups
    grad = grad_out.reshape(n, oh, ow, groups, per_group)
    taps = weight.reshape(groups, per_group, *geometry.kernel)
    xp = _padded(x, geometry.padding)
    grad_w = np.zeros((groups, per_group, *geometry.kernel), x.dtype) if need_weight_grad else None
    grad_xp = np.zeros(xp.shape, x.dtype) if need_input_grad else None
    single = per_group == 1  # plain depthwise: elementwise products, no sum over filters of a group
    flat = grad.reshape(-1, groups) if single else None
    for u, v, rows, cols in _tap_slices(geometry, oh, ow):
        tap = xp[:, rows, cols]
        if grad_w is not None and flat is not None:
            grad_w[:, 0, u, v] = np.einsum("ij,ij->j", flat, tap.reshape(-1, groups))
        elif grad_w is not None:
            grad_w[:, :, u, v] = np.einsum("nijgm,nijg->gm", grad, tap)
        if grad_xp is not None and single:
            grad_xp[:, rows, cols] += grad[..., 0] * taps[:, 0, u, v]
        elif grad_xp is not None:
            grad_xp[:, rows, cols] += np.einsum("nijgm,gm->nijg", grad, taps[:, :, u, v])
    return _cropped(grad_xp, x.shape, geometry), None if grad_w is None else grad_w.reshape(weight.shape)


def _wide_backward(
    grad_out: np.ndarray,
    x: np.ndarray,
    weight: np.ndarray,
    geometry: ConvGeometry,
    groups: int,
    need_input_grad: bool,
    need_weight_grad: bool,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    n, oh, ow, f = grad_out.shape
    _, h, w, c = x.shape
    (kh, kw), (ph, pw) = geometry.kernel, geometry.padding
    cg = c // groups
    flat = _group_weights(weight, groups)  # (G, KH*KW*Cg, Fg)
    grad_flat = np.zeros(flat.shape, x.dtype) if need_weight_grad else None
    grad_xp = np.zeros((n, h + 2 * ph, w + 2 * pw, c), x.dtype) if need_input_grad else None
    for a, b, columns in _group_columns(x, geometry, groups):
        dout = np.ascontiguousarray(grad_out[a:b].reshape(-1, groups, f // groups).transpose(1, 0, 2))  # (G, M, Fg)
        if grad_flat is not None:
            grad_flat += np.matmul(columns.transpose(0, 2, 1), dout)
        if grad_xp is not None:
            dcols = np.matmul(dout, flat.transpose(0, 2, 1)).reshape(groups, b - a, oh, ow, kh, kw, cg)
            for u, v, rows, cols in _tap_slices(geometry, oh, ow):
                piece = dcols[:, :, :, :, u, v].transpose(1, 2, 3, 0, 4).reshape(b - a, oh, ow, c)
                grad_xp[a:b, rows, cols] += piece
    grad_w = None
    if grad_flat is not None:
        grad_w = np.ascontiguousarray(grad_flat.reshape(groups, kh, kw, cg, f // groups).transpose(0, 4, 3, 1, 2))
        grad_w = grad_w.reshape(f, cg, kh, kw)
    return _cropped(grad_xp, x.shape, geometry), grad_w


def _cropped(grad_xp: np.ndarray | None, shape: tuple[int, ...], geometry: ConvGeometry) -> np.ndarray | None:
    if grad_xp is None:
        return None
    ph, pw = geometry.padding
    return np.ascontiguousarray(grad_xp[:, ph : ph + shape[1], pw : pw + shape[2]])
