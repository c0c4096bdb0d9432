"""Batch normalisation (Ioffe & Szegedy, 2015), channel by channel, beside its backward pass.

Arrays hold their channels on the last axis: maps (N, H, W, C), the network's layout between layers, or
flat units (N, C). Every statistic is over all the other axes. PyTorch's conventions throughout:

- a training pass normalises with the batch's own mean and (biased) variance,
  ``y = gamma * (x - mean) / sqrt(var + eps) + beta``;
- and moves the running statistics a step towards the batch's, ``r <- (1 - momentum) r + momentum b``,
  the running variance towards the *unbiased* batch variance (times ``M / (M - 1)``, M values a channel);
- any other pass (inference, explanations, views) uses the running statistics: an affine map.
"""

from __future__ import annotations

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
    return np.asarray(x * scale + shift)


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


def batch_norm_train(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = EPS
) -> tuple[np.ndarray, BatchStatistics]:
    """Normalised by the batch's own statistics: ``y = gamma * x_hat + beta``, ``x_hat = (x - mean) / std``."""
    axes = _per_channel_axes(x)
    count = x.size // x.shape[-1]
    if count < 2:
        raise EngineError(
            "batch normalisation needs more than one value per channel to train (a batch of one picture whose "
            "maps are 1x1): train with a larger batch"
        )
    mean = x.mean(axis=axes, dtype=np.float64)
    centred = x - mean.astype(x.dtype)
    var = np.square(centred).mean(axis=axes, dtype=np.float64)
    inv_std = (1 / np.sqrt(var + eps)).astype(x.dtype)
    normalised = centred * inv_std
    y = normalised * gamma.astype(x.dtype, copy=False) + beta.astype(x.dtype, copy=False)
    return np.asarray(y), BatchStatistics(normalised, inv_std, mean, var, count)


def batch_norm_train_backward(
    grad_out: np.ndarray, stats: BatchStatistics, gamma: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`batch_norm_train`, the statistics being functions of the batch too:
    ``dx = gamma * inv_std / M * (M dy - sum(dy) - x_hat * sum(dy * x_hat))``; (..., C), (C,), (C,)."""
    axes = _per_channel_axes(grad_out)
    grad_beta = grad_out.sum(axis=axes)
    grad_gamma = (grad_out * stats.normalised).sum(axis=axes)
    m = grad_out.dtype.type(stats.count)
    scale = (gamma * stats.inv_std / stats.count).astype(grad_out.dtype)
    grad_x = scale * (m * grad_out - grad_beta.astype(grad_out.dtype) - stats.normalised * grad_gamma)
    return np.asarray(grad_x), grad_gamma, grad_beta


def update_running(
    running_mean: np.ndarray, running_var: np.ndarray, stats: BatchStatistics, momentum: float = MOMENTUM
) -> None:
    """Moves the running statistics (in place) a step towards the batch's, as PyTorch's training pass does."""
    unbiased = stats.var * (stats.count / (stats.count - 1))
    running_mean *= 1 - momentum
    running_mean += (momentum * stats.mean).astype(running_mean.dtype)
    running_var *= 1 - momentum
    running_var += (momentum * unbiased).astype(running_var.dtype)
