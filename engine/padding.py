"""Padding the border of ``(N, C, H, W)`` arrays.

Modes follow ``torch.nn.Conv2d(padding_mode=...)``:

- ``zeros``: extend with 0.
- ``reflect``: mirror without repeating the edge, ``[1 2 3] -> 3 2 | 1 2 3 | 2 1``.
- ``replicate``: repeat the edge value, ``[1 2 3] -> 1 1 | 1 2 3 | 3 3``.
- ``circular``: wrap around, ``[1 2 3] -> 2 3 | 1 2 3 | 1 2``.
- ``partial``: zero padding whose outputs are then re-weighted by
  :func:`partial_conv_ratio` (Liu et al., "Partial Convolution based Padding", 2018).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine._checks import Pair, output_size
from engine.errors import EngineError

PADDING_MODES = ("zeros", "reflect", "replicate", "circular", "partial")

# zeros and partial both pad with 0; partial re-weights afterwards.
_NUMPY_MODE: dict[str, Any] = {
    "zeros": "constant",
    "partial": "constant",
    "reflect": "reflect",
    "replicate": "edge",
    "circular": "wrap",
}


def check_padding_mode(mode: str, padding: Pair, spatial: Pair) -> None:
    """Raises ``ValueError`` for an unknown mode or a padding the mode cannot make."""
    if mode not in PADDING_MODES:
        raise EngineError(f"padding_mode must be one of {', '.join(PADDING_MODES)}; got {mode!r}")
    for axis, p, n in zip(("height", "width"), padding, spatial):
        # Like PyTorch: reflecting needs a pixel beyond the edge, wrapping at most a full turn.
        if mode == "reflect" and p >= n:
            raise EngineError(
                f"padding {p} is too large for reflect padding of input {axis} {n}: reflect needs padding < {n}"
            )
        if mode == "circular" and p > n:
            raise EngineError(
                f"padding {p} is too large for circular padding of input {axis} {n}: circular needs padding <= {n}"
            )


def pad2d(x: np.ndarray, padding: Pair, mode: str = "zeros") -> np.ndarray:
    """Pads the last two axes of ``x`` (N, C, H, W) -> (N, C, H + 2*PH, W + 2*PW)."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), mode=_NUMPY_MODE[mode])


def source_indices(size: int, padding: int, mode: str) -> np.ndarray:
    """For each of the ``size + 2*padding`` padded positions along one axis, the input index it copies
    (reflect, replicate, circular); the inverse map that :func:`pad2d_backward` needs."""
    i = np.arange(-padding, size + padding)
    if mode == "replicate":
        return np.clip(i, 0, size - 1)
    if mode == "circular":
        return i % size
    if mode == "reflect":  # mirror about the edge pixel without repeating it
        period = max(2 * (size - 1), 1)
        i = np.abs(i) % period
        return np.where(i >= size, period - i, i)
    raise EngineError(f"{mode} padding copies no input values")


def pad2d_backward(grad_padded: np.ndarray, padding: Pair, mode: str = "zeros") -> np.ndarray:
    """Gradient of :func:`pad2d`: (N, C, H + 2*PH, W + 2*PW) -> (N, C, H, W).

    Zero padding just drops the border; the copying modes add each border cell's gradient back
    onto the input cell it copied (a border pixel read twice gets both contributions).
    """
    ph, pw = padding
    h, w = grad_padded.shape[2] - 2 * ph, grad_padded.shape[3] - 2 * pw
    if _NUMPY_MODE[mode] == "constant":
        return grad_padded[:, :, ph : ph + h, pw : pw + w]
    rows, cols = source_indices(h, ph, mode), source_indices(w, pw, mode)
    # fold the rows first (H+2PH -> H), then the columns; only the 2P border lines need a loop
    by_rows = grad_padded[:, :, ph : ph + h].copy()
    for r in (*range(ph), *range(ph + h, h + 2 * ph)):
        by_rows[:, :, rows[r]] += grad_padded[:, :, r]
    out = by_rows[:, :, :, pw : pw + w].copy()
    for c in (*range(pw), *range(pw + w, w + 2 * pw)):
        out[:, :, :, cols[c]] += by_rows[:, :, :, c]
    return out


def _valid_taps(size: int, kernel: int, stride: int, padding: int, dilation: int) -> np.ndarray:
    """For each output position along one axis, how many kernel taps land inside the input."""
    n_out = output_size(size, kernel, stride, padding, dilation)
    # first padded-frame coordinate of each window, shifted back to input coordinates
    starts = np.arange(n_out) * stride - padding
    taps = starts[:, None] + np.arange(kernel)[None, :] * dilation
    return np.asarray(((taps >= 0) & (taps < size)).sum(axis=1))


def partial_conv_ratio(spatial: Pair, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair) -> np.ndarray:
    """Re-weighting factor of partial-convolution padding, shape (OH, OW).

    ``ratio = (KH*KW) / (number of kernel taps that fall inside the image)``,
    1 in the interior and > 1 near the border. The image mask is separable
    (a rectangle), so the count is the product of per-axis counts. A window
    that sees no pixel at all gets 0, as in NVIDIA's reference code.
    """
    rows = _valid_taps(spatial[0], kernel[0], stride[0], padding[0], dilation[0])
    cols = _valid_taps(spatial[1], kernel[1], stride[1], padding[1], dilation[1])
    inside = np.outer(rows, cols).astype(np.float64)
    ratio = np.zeros_like(inside)
    np.divide(kernel[0] * kernel[1], inside, out=ratio, where=inside > 0)
    return ratio


__all__ = [
    "PADDING_MODES",
    "check_padding_mode",
    "pad2d",
    "pad2d_backward",
    "partial_conv_ratio",
]


# -- asymmetric padding of channels-last maps (a network's pad layer) ------------------------------------

Sides = tuple[int, int, int, int]  # top, bottom, left, right


def edge_indices(size: int, before: int, after: int, mode: str) -> np.ndarray:
    """For each of the ``before + size + after`` padded positions along one axis, the input index it copies
    (reflect, replicate, circular): :func:`source_indices` with the two sides padded apart."""
    i = np.arange(-before, size + after)
    if mode == "replicate":
        return np.clip(i, 0, size - 1)
    if mode == "circular":
        return i % size
    if mode == "reflect":
        period = max(2 * (size - 1), 1)
        i = np.abs(i) % period
        return np.where(i >= size, period - i, i)
    raise EngineError(f"{mode} padding copies no input values")


def pad_sides(x: np.ndarray, sides: Sides, mode: str = "zeros") -> np.ndarray:
    """(N, H, W, C) -> (N, top + H + bottom, left + W + right, C), the border made as ``mode`` says
    (zeros, reflect, replicate, circular)."""
    top, bottom, left, right = sides
    if not any(sides):
        return x
    if mode == "zeros":
        n, h, w, c = x.shape
        out = np.zeros((n, top + h + bottom, left + w + right, c), x.dtype)
        out[:, top : top + h, left : left + w] = x
        return out
    rows = edge_indices(x.shape[1], top, bottom, mode)
    cols = edge_indices(x.shape[2], left, right, mode)
    return np.ascontiguousarray(x[:, rows][:, :, cols])


def pad_sides_backward(grad_padded: np.ndarray, sides: Sides, mode: str = "zeros") -> np.ndarray:
    """Gradient of :func:`pad_sides`: each padded cell's gradient goes back to the input cell it copied
    (zeros: the border's is dropped); (N, H', W', C) -> (N, H, W, C)."""
    top, bottom, left, right = sides
    h, w = grad_padded.shape[1] - top - bottom, grad_padded.shape[2] - left - right
    if mode == "zeros" or not any(sides):
        return np.ascontiguousarray(grad_padded[:, top : top + h, left : left + w])
    rows, cols = edge_indices(h, top, bottom, mode), edge_indices(w, left, right, mode)
    by_rows = np.zeros((grad_padded.shape[0], h, grad_padded.shape[2], grad_padded.shape[3]), grad_padded.dtype)
    np.add.at(by_rows.swapaxes(0, 1), rows, grad_padded.swapaxes(0, 1))  # rows first, on a view
    out = np.zeros((grad_padded.shape[0], h, w, grad_padded.shape[3]), grad_padded.dtype)
    np.add.at(out.swapaxes(0, 2), cols, by_rows.swapaxes(0, 2))
    return out
