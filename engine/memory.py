"""How much memory a network's passes take, worked out from its plan before anything is allocated.

Float32 throughout (4 bytes a value). For one picture:

- a conv layer's im2col matrix holds ``C * KH * KW * OH * OW`` values (a column per output position);
- a pass that keeps nothing (inference) needs at most one layer's input, output and columns at once;
- a training step keeps every layer's output for the backward pass, and the backward pass adds a
  gradient as large as the largest output and columns: ``2 * sum(outputs) + 2 * max(columns)``.

These are what the service checks a design and a request against, so that a client's
``{"type": "conv", "filters": 25000}`` is refused with the figure instead of taking the server down.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import prod

from engine._checks import pair
from engine.spec import LayerPlan

FLOAT_BYTES = 4
PASS_BYTES = 128 << 20  # what one chunk of a long pass (summaries, features, occlusion) may hold at once


@dataclass(frozen=True)
class LayerMemory:
    """One layer's output and (for conv) im2col columns for one picture, in bytes."""

    name: str
    type: str
    output_shape: tuple[int, ...]
    output_bytes: int
    columns_bytes: int


def layer_memory(plans: Sequence[LayerPlan]) -> list[LayerMemory]:
    """Every layer's bytes for one picture, in order (the input first)."""
    rows = []
    for plan in plans:
        columns = 0
        if plan.type == "conv":
            kh, kw = pair(plan.config["kernel_size"])
            columns = plan.input_shape[0] * kh * kw * prod(plan.output_shape[1:]) * FLOAT_BYTES
        rows.append(
            LayerMemory(plan.owner, plan.type, plan.output_shape, prod(plan.output_shape) * FLOAT_BYTES, columns)
        )
    return rows


def inference_bytes(plans: Sequence[LayerPlan]) -> int:
    """Peak bytes of a forward pass that keeps nothing, per picture: one layer's input, output and columns."""
    rows = layer_memory(plans)
    peak, previous = 0, 0
    for row in rows:
        peak = max(peak, previous + row.output_bytes + row.columns_bytes)
        previous = row.output_bytes
    return peak


def kept_bytes(plans: Sequence[LayerPlan]) -> int:
    """Bytes per picture of a pass that keeps every layer's output (as the maps and unit summaries do)."""
    rows = layer_memory(plans)
    return sum(r.output_bytes for r in rows) + max((r.columns_bytes for r in rows), default=0)


def training_bytes(plans: Sequence[LayerPlan]) -> int:
    """Bytes per picture of a training step: every output kept, and a gradient of the largest one."""
    rows = layer_memory(plans)
    return 2 * sum(r.output_bytes for r in rows) + 2 * max((r.columns_bytes for r in rows), default=0)


def largest_layer(plans: Sequence[LayerPlan]) -> LayerMemory:
    """The layer whose output and columns weigh most for one picture."""
    return max(layer_memory(plans), key=lambda r: r.output_bytes + r.columns_bytes)


def batch_within(per_picture: int, budget_bytes: int, most: int) -> int:
    """How many pictures a pass of ``per_picture`` bytes each may take within ``budget_bytes`` (at least 1)."""
    return max(1, min(most, budget_bytes // max(per_picture, 1)))


def megabytes(count: int) -> str:
    """``78 MB``, ``1.2 GB``: a byte count as a person reads it."""
    if count >= 1 << 30:
        return f"{count / (1 << 30):.1f} GB"
    return f"{count / (1 << 20):,.0f} MB" if count >= 1 << 20 else f"{count / 1024:,.0f} KB"
