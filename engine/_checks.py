"""Argument checking shared by the engine's ops.

Every public op validates its inputs here so that a mistake surfaces as a
``ValueError`` naming the argument and what it may be, never as a NumPy
broadcasting error three calls deep.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.errors import EngineError

Pair = tuple[int, int]


def pair(value: int | Sequence[int]) -> Pair:
    """``3 -> (3, 3)``, ``[2, 1] -> (2, 1)``: a size given as one int or as [height, width], already checked."""
    if isinstance(value, (int, np.integer)):
        return (int(value), int(value))
    return (int(value[0]), int(value[1]))


def as_pair(value: int | Sequence[int], name: str, *, minimum: int) -> Pair:
    """``3 -> (3, 3)``; ``(2, 1) -> (2, 1)``; checks both are ints >= minimum."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif (
        isinstance(value, Sequence)
        and len(value) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
    ):
        pair = (int(value[0]), int(value[1]))
    else:
        raise EngineError(f"{name} must be an int or a pair of ints (h, w), got {value!r}")
    if min(pair) < minimum:
        raise EngineError(f"{name} must be >= {minimum}, got {value!r}")
    return pair


def as_float_array(x: np.ndarray, name: str, ndim: int) -> np.ndarray:
    """Returns ``x`` as float32/float64 with exactly ``ndim`` dimensions."""
    x = np.asarray(x)
    if x.ndim != ndim:
        raise EngineError(f"{name} must have {ndim} dimensions, got shape {x.shape}")
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    return x


def effective_size(kernel: int, dilation: int) -> int:
    """Span of a dilated kernel: ``D*(K-1) + 1``."""
    return dilation * (kernel - 1) + 1


def output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """``floor((N + 2P - D(K-1) - 1) / S) + 1``, the PyTorch convention."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def check_fits(spatial: Pair, kernel: Pair, padding: Pair, dilation: Pair, what: str = "kernel") -> None:
    for axis, n, k, p, d in zip(("height", "width"), spatial, kernel, padding, dilation):
        span = effective_size(k, d)
        if span > n + 2 * p:
            raise EngineError(
                f"{what} {axis} {k} (spanning {span} with dilation {d}) is larger than the "
                f"padded input {axis} {n} + 2*{p} = {n + 2 * p}; use a smaller kernel, "
                "more padding or a larger input"
            )
