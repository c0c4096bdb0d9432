"""What did a network learn? Its units' favourite real pictures, pictures made to please them, where
pictures sit in its last feature space, and what happens when parts of it are switched off.

Units are one named layer's channels (conv, pool: a map, read at its strongest position) or units
(linear: one value). ``x`` is always a batch in the network's input shape, (N, C, H, W) in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.errors import EngineError
from engine.memory import PASS_BYTES, batch_within, kept_bytes
from engine.network import Network

SYNTHETIC_STEPS = 64


@dataclass(frozen=True)
class UnitSummary:
    """For every picture (N) and unit (U) of one layer: its strongest activation and where (row, col)."""

    layer: str
    values: np.ndarray  # (N, U)
    positions: np.ndarray  # (N, U, 2), [0, 0] for linear units


def summarise(network: Network, x: np.ndarray) -> dict[str, UnitSummary]:
    """Every named layer's summary from one pass per batch: what the unit cards need, cached once."""
    names = network.layer_names
    parts: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {name: ([], []) for name in names}
    chunk = batch_within(kept_bytes(network.plans), PASS_BYTES, 256)
    for start in range(0, len(x), chunk):
        acts = network.activations(x[start : start + chunk])
        for name in names:
            out = acts[name]
            if out.ndim == 2:
                parts[name][0].append(out)
                parts[name][1].append(np.zeros((*out.shape, 2), np.int64))
            else:
                n, c, h, w = out.shape
                flat = out.reshape(n, c, h * w)
                best = flat.argmax(axis=2)
                parts[name][0].append(np.take_along_axis(flat, best[..., None], axis=2)[..., 0])
                parts[name][1].append(np.stack([best // w, best % w], axis=-1))
    return {n: UnitSummary(n, np.concatenate(v), np.concatenate(p)) for n, (v, p) in parts.items()}


@dataclass(frozen=True)
class TopExample:
    index: int
    activation: float
    position: tuple[int, int]
    box: tuple[int, int, int, int]  # [y0, x0, y1, x1) on the network's input, clipped to it


def top_examples(network: Network, summary: UnitSummary, unit: int, k: int = 9) -> list[TopExample]:
    """The ``k`` pictures where ``unit`` fires most (at its strongest position), in descending order,
    each with the unit's receptive field on the input there."""
    if not 0 <= unit < summary.values.shape[1]:
        raise EngineError(f"{summary.layer} has units 0..{summary.values.shape[1] - 1}, got {unit}")
    values = summary.values[:, unit]
    order = np.argsort(-values, kind="stable")[:k]
    field = network.receptive_field(summary.layer)
    hw = network.input_shape[1:]
    examples = []
    for index in order:
        i, j = (int(v) for v in summary.positions[index, unit])
        examples.append(TopExample(int(index), float(values[index]), (i, j), field.box(i, j, hw)))
    return examples


def _blur(x: np.ndarray) -> np.ndarray:
    """A light 3x3 binomial blur of (C, H, W), edges replicated: keeps the image from turning to noise."""
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)), mode="edge")
    rows = padded[:, :-2] + 2 * padded[:, 1:-1] + padded[:, 2:]
    return np.asarray((rows[:, :, :-2] + 2 * rows[:, :, 1:-1] + rows[:, :, 2:]) / 16)


def synthetic_input(
    network: Network, layer: str, unit: int, steps: int = SYNTHETIC_STEPS, step_size: float = 0.15, seed: int = 0
) -> np.ndarray:
    """A picture that excites ``unit`` of ``layer``: gradient ascent from grey on the unit's value before
    its activation (for a conv or pool map, at the map's strongest position; for a linear unit, its
    value), with the usual regularisers (Olah et al., 2017): a random jitter of up to 2 px each step, a
    light blur every 8 steps and a decay towards grey; kept in [0, 1]. Seeded, so a unit always gets
    the same picture. (C, H, W)."""
    rng = np.random.default_rng(seed)
    x = np.full(network.input_shape, 0.5, np.float32) + rng.normal(0, 0.02, network.input_shape).astype(np.float32)
    # a pooled map is the max of the conv map before it: climb that map (its zeros after ReLU give no
    # gradient), at the same channel
    plans = {p.name: p for p in network.plans if p.named}
    target = layer
    if plans[layer].kind.draw == "pool":
        before = plans.get(plans[layer].input_names[0])
        if before is not None and before.kind.draw == "conv":
            target = before.name

    def objective(out: np.ndarray) -> np.ndarray:
        grad = np.zeros_like(out)
        if out.ndim == 2:
            grad[:, unit] = 1
        else:  # the map's strongest position, as the unit cards rank real pictures
            i, j = np.unravel_index(np.argmax(out[0, unit]), out.shape[2:])
            grad[:, unit, i, j] = 1
        return grad

    for step in range(steps):
        dy, dx = (int(v) for v in rng.integers(-2, 3, 2))
        shifted = np.roll(x, (dy, dx), axis=(1, 2))
        _, grad = network.layer_gradient(shifted[None], target, objective, before_activation=True)
        grad = np.roll(grad[0], (-dy, -dx), axis=(1, 2))
        x = x + step_size * grad / (grad.std() + 1e-8)
        x = 0.5 + (x - 0.5) * 0.998  # decay towards grey
        if step % 8 == 7:
            x = _blur(x)
        x = np.clip(x, 0, 1).astype(np.float32)
    return x


def unit_value(network: Network, layer: str, unit: int, x: np.ndarray) -> np.ndarray:
    """The unit's activation for a batch, as the unit cards rank pictures: a map's strongest value, or a
    linear unit's value."""
    out = network.activations(x)[layer]
    return out[:, unit] if out.ndim == 2 else out[:, unit].reshape(len(x), -1).max(axis=1)


def unit_weights(network: Network, layer: str, unit: int) -> dict[str, Any] | None:
    """A conv unit's filter (C, KH, KW) and bias, or a linear unit's weights (in,) and bias; None for pooling."""
    key = f"{layer}.weight"
    if key not in network.params:
        return None
    weight = network.params[key]
    if not 0 <= unit < weight.shape[0]:
        raise EngineError(f"{layer} has units 0..{weight.shape[0] - 1}, got {unit}")
    return {"weight": weight[unit], "bias": float(network.params[f"{layer}.bias"][unit])}


# -- the class map -----------------------------------------------------------------------------------


def penultimate(network: Network, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """The features the last layer reads (the named layer before it), flattened: (N, D); in chunks whose
    kept layers stay within ``PASS_BYTES``."""
    names = network.layer_names
    if len(names) < 2:
        raise EngineError("a network of one layer has no layer before its last to map")
    feature = names[-2]
    batch = batch_within(kept_bytes(network.plans), PASS_BYTES, batch)
    parts = [
        network.activations(x[s : s + batch])[feature].reshape(len(x[s : s + batch]), -1)
        for s in range(0, len(x), batch)
    ]
    return np.concatenate(parts).astype(np.float64)


@dataclass(frozen=True)
class Embedding:
    """A 2-D map of feature vectors by PCA: ``points`` (N, 2); ``mean`` and ``axes`` (2, D) place new ones."""

    points: np.ndarray
    mean: np.ndarray
    axes: np.ndarray
    explained: np.ndarray  # the share of variance along each axis

    def place(self, features: np.ndarray) -> np.ndarray:
        return np.asarray((features - self.mean) @ self.axes.T)


def pca_embedding(features: np.ndarray) -> Embedding:
    """The two directions of largest variance (an SVD of the centred features)."""
    mean = features.mean(axis=0)
    centred = features - mean
    _, singular, axes = np.linalg.svd(centred, full_matrices=False)
    # a sign convention, so that the map does not flip from one run to the next
    signs = np.sign(axes[:2, np.argmax(np.abs(axes[:2]), axis=1)].diagonal())
    axes2 = axes[:2] * np.where(signs == 0, 1, signs)[:, None]
    variance = singular**2
    return Embedding(centred @ axes2.T, mean, axes2, variance[:2] / max(variance.sum(), 1e-12))


def nearest(features: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and Euclidean distances of the ``k`` rows of ``features`` nearest ``query`` (D,), closest first."""
    distances = np.sqrt(np.maximum(((features - query) ** 2).sum(axis=1), 0))
    order = np.argsort(distances, kind="stable")[:k]
    return order, distances[order]


# -- network surgery ---------------------------------------------------------------------------------


EDIT_OPS = ("zero", "set_filter", "scale")


def apply_edits(network: Network, edits: list[dict[str, Any]]) -> Network:
    """A copy of ``network`` with the edits made, in order; the original is never changed.

    - ``{"op": "zero", "layer", "unit"}``: the unit's weights and bias become 0 (a filter switched off)
    - ``{"op": "set_filter", "layer", "unit", "kernel"}``: a first-layer filter replaced by a KH x KW kernel
    - ``{"op": "scale", "layer", "factor"}``: the layer's weights and biases multiplied by ``factor``
    """
    edited = network.copy()
    convs = [p.name for p in network.plans if p.kind.draw == "conv"]
    for number, edit in enumerate(edits, start=1):
        op, layer = edit.get("op"), edit.get("layer")
        where = f"edit {number}"
        if op not in EDIT_OPS:
            raise EngineError(f"{where}: op must be one of {', '.join(EDIT_OPS)}, got {op!r}")
        if f"{layer}.weight" not in edited.params:
            with_weights = [n for n in network.layer_names if f"{n}.weight" in network.params]
            raise EngineError(f"{where}: {layer!r} is not a layer with weights; those are {', '.join(with_weights)}")
        weight, bias = edited.params[f"{layer}.weight"], edited.params[f"{layer}.bias"]
        if op == "scale":
            factor = edit.get("factor")
            if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not -100 <= factor <= 100:
                raise EngineError(f"{where}: factor must be a number from -100 to 100, got {factor!r}")
            with np.errstate(over="ignore"):  # an overflow is caught just below, in words
                weight *= factor
                bias *= factor
            if not (np.isfinite(weight).all() and np.isfinite(bias).all()):
                raise EngineError(
                    f"{where}: scaling {layer} by {factor:g} makes some of its weights too large for a float "
                    f"(largest now {np.abs(network.params[f'{layer}.weight']).max():.3g} before this chain of edits); "
                    "scale by less"
                )
            continue
        unit = edit.get("unit")
        if isinstance(unit, bool) or not isinstance(unit, int) or not 0 <= unit < weight.shape[0]:
            raise EngineError(f"{where}: {layer} has units 0..{weight.shape[0] - 1}, got {unit!r}")
        if op == "zero":
            weight[unit] = 0
            bias[unit] = 0
            continue
        if not convs or layer != convs[0]:
            raise EngineError(
                f"{where}: set_filter replaces a filter of the first conv layer ({convs[0] if convs else 'none'})"
            )
        kernel = np.asarray(edit.get("kernel"), dtype=np.float64) if _is_grid(edit.get("kernel")) else None
        if (
            kernel is None
            or kernel.shape != weight.shape[2:]
            or not np.isfinite(kernel).all()
            or np.abs(kernel).max() > 1e3
        ):
            size = "x".join(map(str, weight.shape[2:]))
            raise EngineError(
                f"{where}: kernel must be a {size} grid of numbers within ±1000, like the layer's filters"
            )
        weight[unit] = kernel[None].astype(weight.dtype)  # every input channel alike
    return edited


def _is_grid(value: Any) -> bool:
    """A list of equally long lists of numbers (a ragged one is not a grid)."""
    return (
        isinstance(value, list)
        and all(
            isinstance(row, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row)
            for row in value
        )
        and len({len(row) for row in value}) == 1
    )


__all__ = [
    "Embedding",
    "TopExample",
    "UnitSummary",
    "apply_edits",
    "nearest",
    "pca_embedding",
    "penultimate",
    "summarise",
    "synthetic_input",
    "top_examples",
    "unit_value",
    "unit_weights",
]
