"""Batch normalisation (Ioffe & Szegedy, 2015), channel by channel, beside its backward pass.

Arrays hold their channels on the last axis: maps (N, H, W, C), the network's layout between layers, or
flat units (N, C). Every statistic is over all the other axes. PyTorch's conventions throughout:

- a training pass normalises with the batch's own mean and (biased) variance,
  ``y = gamma * (x - mean) / sqrt(var + eps) + beta``;
- and moves the running statistics a step towards the batch's, ``r <- (1 - momentum) r + momentum b``,
  the running variance towards the *unbiased* batch variance (times ``M / (M - 1)``, M values a channel);
- any other pass (inference, explanations, views) uses the running statistics: an affine map.

A batch split across threads normalises with the whole batch's statistics (synchronised BatchNorm): each
slice works out its own count, mean and sum of squared deviations, :class:`AllReduce` gathers them, and
:func:`combined_moments` merges them exactly (Chan et al.'s pairwise formula); its backward pass gathers
the slices' sums of the gradient in the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.errors import EngineError

EPS = 1e-5
MOMENTUM = 0.1


def _per_channel_axes(x: np.ndarray) -> tuple[int, ...]:
    return tuple(range(x.ndim - 1))


def batch_norm(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray, eps: float = EPS
) -> np.ndarray:
    """``gamma * (x - mean) / sqrt(var + eps) + beta`` with given statistics (C,) each; x (..., C)."""
    scale = (gamma / np.sqrt(var + eps)).astype(x.dtype, copy=False)
    shift = (beta - mean * scale).astype(x.dtype, copy=False)
    y: np.ndarray = np.multiply(x, scale)
    y += shift
    return y


def batch_norm_eval_backward(
    grad_out: np.ndarray, x: np.ndarray, gamma: np.ndarray, mean: np.ndarray, var: np.ndarray, eps: float = EPS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`batch_norm` with fixed statistics: grad_x (..., C), grad_gamma (C,), grad_beta (C,)."""
    axes = _per_channel_axes(x)
    inv_std = (1 / np.sqrt(var + eps)).astype(x.dtype, copy=False)
    grad_gamma = (grad_out * ((x - mean.astype(x.dtype)) * inv_std)).sum(axis=axes)
    return np.asarray(grad_out * (gamma * inv_std).astype(x.dtype)), grad_gamma, grad_out.sum(axis=axes)


@dataclass(frozen=True)
class BatchStatistics:
    """What a training pass of :func:`batch_norm_train` keeps for its backward pass and the running update."""

    normalised: np.ndarray  # (x - mean) / sqrt(var + eps), the shape of x
    inv_std: np.ndarray  # (C,)
    mean: np.ndarray  # (C,)
    var: np.ndarray  # (C,), biased
    count: int  # values per channel


def _channel_sums(x2: np.ndarray) -> np.ndarray:
    """Each column's sum of an (M, C) array, as one matrix-vector product (a reduction along the long axis
    of a narrow array is several times slower)."""
    return np.asarray(np.ones(len(x2), x2.dtype) @ x2)


Moments = tuple[int, np.ndarray, np.ndarray]  # values a channel, their mean and sum of squared deviations


def batch_moments(x: np.ndarray) -> Moments:
    """A (part of a) batch's count, mean and sum of squared deviations a channel; x (..., C)."""
    channels = x.shape[-1]
    x2 = x.reshape(-1, channels)
    mean = _channel_sums(x2) / x.dtype.type(len(x2))
    centred = x2 - mean
    return len(x2), mean.astype(np.float64), np.einsum("ij,ij->j", centred, centred).astype(np.float64)


def combined_moments(parts: Sequence[Moments]) -> Moments:
    """The moments of the union of the parts' values: ``mean = sum(n_k m_k) / n``,
    ``M2 = sum(M2_k) + sum(n_k (m_k - mean)^2)`` (exact, and stable where ``E[x^2] - mean^2`` is not)."""
    count = sum(n for n, _, _ in parts)
    mean = sum(n * m for n, m, _ in parts) / count
    m2 = sum(s + n * np.square(m - mean) for n, m, s in parts)
    return count, np.asarray(mean), np.asarray(m2)


def batch_norm_train(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = EPS, whole: Moments | None = None
) -> tuple[np.ndarray, BatchStatistics]:
    """Normalised by the batch's own statistics: ``y = gamma * x_hat + beta``, ``x_hat = (x - mean) / std``;
    ``whole``: the whole batch's moments when ``x`` is a slice of it (synchronised), else ``x``'s own."""
    channels = x.shape[-1]
    count = whole[0] if whole is not None else x.size // channels
    if count < 2:
        raise EngineError(
            "batch normalisation needs more than one value per channel to train (a batch of one picture whose "
            "maps are 1x1): train with a larger batch"
        )
    x2 = x.reshape(-1, channels)
    if whole is None:
        mean = _channel_sums(x2) / x.dtype.type(count)
        normalised = x2 - mean  # centred now, normalised in place below
        var = np.einsum("ij,ij->j", normalised, normalised) / x.dtype.type(count)
    else:
        mean, var = whole[1].astype(x.dtype), (whole[2] / count).astype(x.dtype)
        normalised = x2 - mean
    inv_std = (1 / np.sqrt(var + eps)).astype(x.dtype)
    normalised *= inv_std
    y = normalised * gamma.astype(x.dtype, copy=False)
    y += beta.astype(x.dtype, copy=False)
    stats = BatchStatistics(
        normalised.reshape(x.shape), inv_std, mean.astype(np.float64), var.astype(np.float64), count
    )
    return y.reshape(x.shape), stats


def gradient_sums(grad_out: np.ndarray, stats: BatchStatistics) -> tuple[np.ndarray, np.ndarray]:
    """``sum(dy)`` and ``sum(dy * x_hat)`` a channel (the beta and gamma gradients) over ``grad_out``'s values."""
    channels = grad_out.shape[-1]
    g2, normalised = grad_out.reshape(-1, channels), stats.normalised.reshape(-1, channels)
    return _channel_sums(g2), np.einsum("ij,ij->j", g2, normalised)


def batch_norm_train_backward(
    grad_out: np.ndarray, stats: BatchStatistics, gamma: np.ndarray, whole: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`batch_norm_train`, the statistics being functions of the batch too:
    ``dx = gamma * inv_std / M * (M dy - sum(dy) - x_hat * sum(dy * x_hat))``; (..., C), (C,), (C,).
    ``whole``: the whole batch's two sums when ``grad_out`` is a slice of it (the parameter gradients
    returned are still the slice's own, which add up over the slices)."""
    channels = grad_out.shape[-1]
    g2 = grad_out.reshape(-1, channels)
    normalised = stats.normalised.reshape(-1, channels)
    grad_beta, grad_gamma = gradient_sums(grad_out, stats)
    sum_beta, sum_gamma = whole if whole is not None else (grad_beta, grad_gamma)
    scale = (gamma * stats.inv_std).astype(grad_out.dtype)
    per_value = grad_out.dtype.type(1 / stats.count)
    grad_x = normalised * (-scale * sum_gamma.astype(grad_out.dtype) * per_value)
    grad_x += g2 * scale
    grad_x -= scale * sum_beta.astype(grad_out.dtype) * per_value
    return grad_x.reshape(grad_out.shape), grad_gamma, grad_beta


class AllReduce:
    """The slices of one batch, each on its own thread, meeting at a layer: each hands in its part and gets
    every part back, in slice order (a barrier each side, so a later meeting cannot overwrite this one)."""

    TIMEOUT = 120.0

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.parts: list[object] = [None] * parties
        self.barrier = threading.Barrier(parties, timeout=self.TIMEOUT)

    def gather(self, rank: int, part: object) -> list[object]:
        self.parts[rank] = part
        self.barrier.wait()
        parts = list(self.parts)
        self.barrier.wait()
        return parts

    def abort(self) -> None:
        """A slice failed: the others stop waiting for it (their wait raises instead of hanging)."""
        self.barrier.abort()


def update_running(
    running_mean: np.ndarray, running_var: np.ndarray, stats: BatchStatistics, momentum: float = MOMENTUM
) -> None:
    """Moves the running statistics (in place) a step towards the batch's, as PyTorch's training pass does."""
    unbiased = stats.var * (stats.count / (stats.count - 1))
    running_mean *= 1 - momentum
    running_mean += (momentum * stats.mean).astype(running_mean.dtype)
    running_var *= 1 - momentum
    running_var += (momentum * unbiased).astype(running_var.dtype)
