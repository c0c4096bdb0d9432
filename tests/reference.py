"""Naive loop twins of the engine's ops: slow, obvious, and written independently
(no im2col, no np.pad) so that they can serve as ground truth."""

from __future__ import annotations

import math

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


def conv2d_naive(x, w, b=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), mode="zeros", groups=1):
    """Each output cell the weighted sum of its window, over its group's channels only."""
    n, c, h, wd = x.shape
    f, cg, kh, kw = w.shape
    per_group = f // groups
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
                            first = (fi // per_group) * cg  # the filter's group's first input channel
                            total += float(np.dot(x[ni, first : first + cg, r, q], w[fi, :, u, v]))
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


# -- the layers a course meets next, each as plainly as it is defined --------------------------------------

SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def activation_naive(kind: str, x, **settings):
    """One number at a time, from the definitions."""

    def one(v: float) -> float:
        if kind == "relu":
            return max(v, 0.0)
        if kind == "tanh":
            return math.tanh(v)
        if kind == "sigmoid":
            return 1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v))
        if kind == "leakyrelu":
            return v if v > 0 else settings.get("slope", 0.01) * v
        if kind == "elu":
            return v if v > 0 else settings.get("alpha", 1.0) * (math.exp(v) - 1)
        if kind == "selu":
            return SELU_SCALE * (v if v > 0 else SELU_ALPHA * (math.exp(v) - 1))
        if kind == "relu6":
            return min(max(v, 0.0), 6.0)
        if kind == "hardsigmoid":
            return min(max(v / 6 + 0.5, 0.0), 1.0)
        if kind == "hardswish":
            return v * min(max(v + 3, 0.0), 6.0) / 6
        raise ValueError(kind)

    x = np.asarray(x, dtype=np.float64)
    return np.array([one(float(v)) for v in x.ravel()]).reshape(x.shape)


def batchnorm_naive(x, gamma, beta, mean=None, var=None, eps=1e-5):
    """Channel by channel (axis 1): with ``mean`` and ``var`` given, those; else the batch's own (biased)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros_like(x)
    for c in range(x.shape[1]):
        values = x[:, c]
        m = float(values.mean()) if mean is None else float(mean[c])
        v = float(((values - values.mean()) ** 2).mean()) if var is None else float(var[c])
        out[:, c] = gamma[c] * (values - m) / math.sqrt(v + eps) + beta[c]
    return out


def pad_naive(x, sides, mode="zeros"):
    """(N, C, H, W) with each output cell copied from the cell the padding mode reads (or zero)."""
    top, bottom, left, right = sides
    n, c, h, w = x.shape
    out = np.zeros((n, c, h + top + bottom, w + left + right))
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            r, q = source_index(i - top, h, mode), source_index(j - left, w, mode)
            if r is not None and q is not None:
                out[:, :, i, j] = x[:, :, r, q]
    return out


def global_avgpool_naive(x):
    n, c, h, w = x.shape
    out = np.zeros((n, c, 1, 1))
    for ni in range(n):
        for ci in range(c):
            out[ni, ci, 0, 0] = sum(x[ni, ci, i, j] for i in range(h) for j in range(w)) / (h * w)
    return out


def _layer_naive(plan, xs, params):
    cfg, name = plan.config, plan.name
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    x = xs[0]
    if plan.type == "conv":
        w, b = params[f"{name}.weight"], params[f"{name}.bias"]
        window = pair(cfg["stride"]), pair(cfg["padding"]), pair(cfg["dilation"])
        return conv2d_naive(x, w, b, *window, cfg["padding_mode"], cfg["groups"])
    if plan.type in ("maxpool", "avgpool"):
        reduce = np.max if plan.type == "maxpool" else np.mean
        return pool2d_naive(x, pair(cfg["kernel_size"]), pair(cfg["stride"]), reduce)
    if plan.type == "globalavgpool":
        return global_avgpool_naive(x)
    if plan.type == "pad":
        return pad_naive(x, cfg["padding"], cfg["padding_mode"])
    if plan.type == "flatten":
        return x.reshape(len(x), -1)
    if plan.type == "linear":
        w, b = params[f"{name}.weight"], params[f"{name}.bias"]
        return np.array([[sum(w[o, i] * row[i] for i in range(len(row))) + b[o] for o in range(len(b))] for row in x])
    if plan.type == "batchnorm":
        stats = params[f"{name}.running_mean"], params[f"{name}.running_var"]
        return batchnorm_naive(x, params[f"{name}.weight"], params[f"{name}.bias"], *stats, cfg["eps"])
    if plan.type == "normalize":
        out = np.zeros_like(x)
        for c in range(x.shape[1]):
            out[:, c] = (x[:, c] - cfg["mean"][c]) / cfg["std"][c]
        return out
    if plan.type == "add":
        return sum(xs[1:], xs[0])
    if plan.type == "concat":
        return np.concatenate(xs, axis=1)
    if plan.type == "dropout":
        return x
    settings = {k: cfg[k] for k in ("slope", "alpha") if k in cfg}
    return activation_naive(plan.type, x, **settings)


def network_forward_naive(network, x):
    """A network's logits from the loop twins alone, layer by layer as its spec reads, each reading the
    outputs it names (dropout off, BatchNorm with its running statistics)."""
    outputs = {-1: np.asarray(x, dtype=np.float64)}
    for plan in network.plans:
        outputs[plan.index] = _layer_naive(plan, [outputs[s] for s in plan.sources], network.params)
    return outputs[network.plans[-1].index]
