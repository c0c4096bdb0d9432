"""Naive loop twins of the engine's ops: slow, obvious, and written independently
(no im2col, no np.pad) so that they can serve as ground truth."""

from __future__ import annotations

import numpy as np


def source_index(i: int, size: int, mode: str) -> int | None:
    """Which input index a (possibly out-of-range) index reads under a padding mode; None = zero."""
    if 0 <= i < size:
        return i
    if mode in ("zeros", "partial"):
        return None
    if mode == "replicate":
        return min(max(i, 0), size - 1)
    if mode == "circular":
        return i % size
    if mode == "reflect":  # mirror about the edge pixel, without repeating it
        period = 2 * (size - 1)
        i = abs(i) % period
        return period - i if i >= size else i
    raise ValueError(mode)


def conv2d_naive(x, w, b=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), mode="zeros"):
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, f, oh, ow))
    for ni in range(n):
        for fi in range(f):
            for i in range(oh):
                for j in range(ow):
                    total, inside = 0.0, 0
                    for u in range(kh):
                        for v in range(kw):
                            r = source_index(i * sh + u * dh - ph, h, mode)
                            q = source_index(j * sw + v * dw - pw, wd, mode)
                            if r is None or q is None:
                                continue
                            inside += 1
                            total += float(np.dot(x[ni, :, r, q], w[fi, :, u, v]))
                    if mode == "partial":
                        total = total * (kh * kw) / inside if inside else 0.0
                    out[ni, fi, i, j] = total + (b[fi] if b is not None else 0.0)
    return out


def conv_transpose2d_naive(x, w, b=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), output_padding=(0, 0)):
    """Each input cell scatters its value times the kernel onto the output."""
    n, c_in, h, wd = x.shape
    _, c_out, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw), (oph, opw) = stride, padding, dilation, output_padding
    oh = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    ow = (wd - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    out = np.zeros((n, c_out, oh, ow))
    for ni in range(n):
        for ci in range(c_in):
            for i in range(h):
                for j in range(wd):
                    for u in range(kh):
                        for v in range(kw):
                            r, q = i * sh + u * dh - ph, j * sw + v * dw - pw
                            if 0 <= r < oh and 0 <= q < ow:
                                out[ni, :, r, q] += x[ni, ci, i, j] * w[ci, :, u, v]
    if b is not None:
        out += b[None, :, None, None]
    return out


def pool2d_naive(x, kernel, stride, reduce):
    n, c, h, w = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    out = np.zeros((n, c, oh, ow))
    for ni in range(n):
        for ci in range(c):
            for i in range(oh):
                for j in range(ow):
                    out[ni, ci, i, j] = reduce(x[ni, ci, i * sh : i * sh + kh, j * sw : j * sw + kw])
    return out


def numeric_gradient(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central finite differences of the scalar function ``f`` at ``x`` (float64)."""
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for k in range(flat.size):
        saved = flat[k]
        flat[k] = saved + eps
        up = f()
        flat[k] = saved - eps
        down = f()
        flat[k] = saved
        gflat[k] = (up - down) / (2 * eps)
    return grad


def network_forward_naive(network, x):
    """A network's logits from the loop twins alone, layer by layer as its spec reads (dropout off)."""
    x = np.asarray(x, dtype=np.float64)
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    for plan in network.plans:
        cfg = plan.config
        if plan.type == "conv":
            w, b = network.params[f"{plan.owner}.weight"], network.params[f"{plan.owner}.bias"]
            x = conv2d_naive(
                x, w, b, pair(cfg["stride"]), pair(cfg["padding"]), pair(cfg["dilation"]), cfg["padding_mode"]
            )
        elif plan.type in ("maxpool", "avgpool"):
            reduce = np.max if plan.type == "maxpool" else np.mean
            x = pool2d_naive(x, pair(cfg["kernel_size"]), pair(cfg["stride"]), reduce)
        elif plan.type == "flatten":
            x = x.reshape(len(x), -1)
        elif plan.type == "linear":
            w, b = network.params[f"{plan.owner}.weight"], network.params[f"{plan.owner}.bias"]
            x = np.array([[sum(w[o, i] * row[i] for i in range(len(row))) + b[o] for o in range(len(b))] for row in x])
        elif plan.type == "relu":
            x = np.where(x > 0, x, 0.0)
        elif plan.type == "tanh":
            x = np.tanh(x)
        elif plan.type == "sigmoid":
            x = 1 / (1 + np.exp(-x))
    return x
