"""How much memory a network's passes take, worked out from its plan before anything is allocated.

Float32 throughout (4 bytes a value). For one picture:

- a conv layer's im2col matrix holds ``C * KH * KW * OH * OW`` values (a column per output position);
- a pass that keeps nothing (inference) needs, while a layer runs, every output a later layer still reads
  (its input; in a graph, a skip connection's shortcut too), its own output and its columns;
- a training step keeps every layer's output for the backward pass, and the backward pass adds a
  gradient as large as the largest output and columns: ``2 * sum(outputs) + 2 * max(columns)``.

These are what the service checks a design and a request against, so that a client's
``{"type": "conv", "filters": 25000}`` is refused with the figure instead of taking the server down.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import prod

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
    """Every layer's bytes for one picture, in order: its output, and its type's working memory (a conv's
    im2col columns)."""
    return [
        LayerMemory(
            plan.name,
            plan.type,
            plan.output_shape,
            prod(plan.output_shape) * FLOAT_BYTES,
            plan.kind.scratch_bytes(plan),
        )
        for plan in plans
    ]


def inference_bytes(plans: Sequence[LayerPlan]) -> int:
    """Peak bytes of a forward pass that keeps nothing, per picture: while a layer runs, every output some
    later layer still reads (in a chain, only its input; across a skip connection, the shortcut too) plus
    its own output and columns."""
    rows = layer_memory(plans)
    last_reader = {s: plan.index for plan in plans for s in plan.sources}
    input_bytes = prod(plans[0].input_shape) * FLOAT_BYTES if plans else 0
    live = {-1: input_bytes}
    peak = 0
    for plan, row in zip(plans, rows):
        peak = max(peak, sum(live.values()) + row.output_bytes + row.columns_bytes)
        live = {k: v for k, v in live.items() if last_reader.get(k, -2) > plan.index}
        live[plan.index] = row.output_bytes
    return peak


def kept_bytes(plans: Sequence[LayerPlan]) -> int:
    """Bytes per picture of a pass that keeps every layer's output (as the maps and unit summaries do)."""
    rows = layer_memory(plans)
    return sum(r.output_bytes for r in rows) + max((r.columns_bytes for r in rows), default=0)


def training_bytes(plans: Sequence[LayerPlan]) -> int:
    """Bytes per picture of a training step: every output kept, and a gradient of the largest one (an
    output several layers read gets one gradient, their sum)."""
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
