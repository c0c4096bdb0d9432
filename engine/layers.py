"""Fully connected layer, ReLU, softmax and cross-entropy, each beside its backward pass."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.errors import EngineError


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """``y = x @ W.T + b``; x: (N, D_in), weight: (D_out, D_in), bias: (D_out,) -> (N, D_out)."""
    if x.ndim != 2 or weight.ndim != 2 or x.shape[1] != weight.shape[1]:
        raise EngineError(
            f"linear needs x (N, D_in) and weight (D_out, D_in) with the same D_in; "
            f"got x {x.shape} and weight {weight.shape}"
        )
    y = x @ weight.T
    return np.asarray(y if bias is None else y + bias)


def linear_backward(
    grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """grad_out: (N, D_out) -> grad_x (N, D_in), grad_weight (D_out, D_in), grad_bias (D_out,)."""
    return grad_out @ weight, grad_out.T @ x, grad_out.sum(axis=0)


def relu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``max(x, 0)`` elementwise (into ``out`` when given, which may be ``x``)."""
    return np.asarray(np.maximum(x, 0, out=out))


def relu_backward(grad_out: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The gradient passes where the input was positive and stops elsewhere."""
    return grad_out * (x > 0)


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """``exp(z_i) / sum_j exp(z_j)``, shifted by the maximum so large logits cannot overflow."""
    shifted = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return np.asarray(e / e.sum(axis=axis, keepdims=True))


def log_softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """``z_i - log sum_j exp(z_j)``, computed stably."""
    shifted = logits - logits.max(axis=axis, keepdims=True)
    return np.asarray(shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True)))


def _check_labels(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise EngineError(f"cross_entropy needs logits (N, K) and labels (N,); got {logits.shape} and {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise EngineError(f"labels must lie in 0..{logits.shape[1] - 1}")
    return labels.astype(np.intp)


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood ``-mean_n log softmax(z_n)[y_n]``; logits (N, K), labels (N,)."""
    labels = _check_labels(logits, labels)
    return float(-log_softmax(logits)[np.arange(len(labels)), labels].mean())


def cross_entropy_backward(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Gradient of the mean cross-entropy: ``(softmax(z) - onehot(y)) / N``, shape (N, K)."""
    labels = _check_labels(logits, labels)
    grad = softmax(logits)
    grad[np.arange(len(labels)), labels] -= 1
    return grad / len(labels)


def tanh(x: np.ndarray) -> np.ndarray:
    """``tanh(x)`` elementwise, squashing to (-1, 1)."""
    return np.asarray(np.tanh(x))


def tanh_backward(grad_out: np.ndarray, y: np.ndarray) -> np.ndarray:
    """From the output ``y = tanh(x)``: ``dy/dx = 1 - y^2``."""
    return np.asarray(grad_out * (1 - y * y))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` elementwise, squashing to (0, 1); written through tanh so it cannot overflow."""
    return 0.5 * (np.tanh(0.5 * x) + 1)


def sigmoid_backward(grad_out: np.ndarray, y: np.ndarray) -> np.ndarray:
    """From the output ``y = sigmoid(x)``: ``dy/dx = y (1 - y)``."""
    return np.asarray(grad_out * y * (1 - y))


def dropout_mask(
    shape: tuple[int, ...], rate: float, rng: np.random.Generator, dtype: type[np.floating[Any]] = np.float32
) -> np.ndarray:
    """Inverted dropout: each unit is kept with probability ``1 - rate`` and scaled by ``1 / (1 - rate)``,
    so that at inference the layer is the identity. Forward and backward both multiply by the mask."""
    if not 0 <= rate < 1:
        raise EngineError(f"dropout rate must be in [0, 1), got {rate}")
    return np.asarray((rng.random(shape) >= rate).astype(dtype) / dtype(1 - rate))


# -- more activations, each from its input x (N, ...) to its output, and back -----------------------------
# PyTorch's definitions and constants; each backward takes the forward's input.

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def leaky_relu(x: np.ndarray, slope: float = 0.01) -> np.ndarray:
    """``x`` where positive, ``slope * x`` elsewhere."""
    return np.asarray(np.where(x > 0, x, x * x.dtype.type(slope)))


def leaky_relu_backward(grad_out: np.ndarray, x: np.ndarray, slope: float = 0.01) -> np.ndarray:
    return np.asarray(np.where(x > 0, grad_out, grad_out * grad_out.dtype.type(slope)))


def elu(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """``x`` where positive, ``alpha * (exp(x) - 1)`` elsewhere (the exponential of x <= 0 cannot overflow)."""
    return np.asarray(np.where(x > 0, x, x.dtype.type(alpha) * np.expm1(np.minimum(x, 0))))


def elu_backward(grad_out: np.ndarray, x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    return np.asarray(np.where(x > 0, grad_out, grad_out * x.dtype.type(alpha) * np.exp(np.minimum(x, 0))))


def selu(x: np.ndarray) -> np.ndarray:
    """``scale * elu(x, alpha)`` with the self-normalising constants (Klambauer et al., 2017)."""
    return np.asarray(x.dtype.type(SELU_SCALE) * elu(x, SELU_ALPHA))


def selu_backward(grad_out: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.asarray(grad_out.dtype.type(SELU_SCALE) * elu_backward(grad_out, x, SELU_ALPHA))


def relu6(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``min(max(x, 0), 6)``: a ReLU that saturates (MobileNet's, for low-precision arithmetic); into
    ``out`` when given, which may be ``x``."""
    y: np.ndarray = np.maximum(x, 0, out=out)
    np.minimum(y, 6, out=y)  # np.clip's wrapper costs more than the two passes
    return y


def relu6_backward(grad_out: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.asarray(grad_out * ((x > 0) & (x < 6)))


def hardsigmoid(x: np.ndarray) -> np.ndarray:
    """``relu6(x + 3) / 6``: the sigmoid's piecewise-linear stand-in (0 below -3, 1 above 3)."""
    return np.asarray(np.clip(x / x.dtype.type(6) + x.dtype.type(0.5), 0, 1))


def hardsigmoid_backward(grad_out: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.asarray(grad_out * ((x > -3) & (x < 3)) / grad_out.dtype.type(6))


def hardswish(x: np.ndarray) -> np.ndarray:
    """``x * hardsigmoid(x)`` (MobileNetV3's)."""
    return np.asarray(x * hardsigmoid(x))


def hardswish_backward(grad_out: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``0`` below -3, ``1`` above 3, ``x / 3 + 1/2`` between (PyTorch's choice at the two kinks)."""
    slope = np.where(x < -3, 0, np.where(x > 3, 1, x / x.dtype.type(3) + x.dtype.type(0.5)))
    return np.asarray(grad_out * slope.astype(grad_out.dtype, copy=False))
