"""Running a plan (:mod:`engine.spec`) over a batch: the forward pass through every layer in order, each
reading the outputs it names, and the backward pass in reverse, where the gradient of an output that
several layers read is the sum of theirs (the chain rule along every path).

Arrays between layers are channels-last, (N, H, W, C) maps or (N, D) units; each layer's arithmetic is
its type's (:mod:`engine.kinds`). A pass that keeps nothing frees each output once its last reader has
run, so a chain holds one layer's input and output at a time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from engine.kinds import Needs, Run
from engine.spec import LayerPlan, parameter_shapes


@dataclass
class Trace:
    """What a forward pass leaves: the last layer's output, each layer's cache (when kept), and the outputs
    of the layers asked for."""

    output: np.ndarray
    caches: list[Any]
    reported: dict[int, np.ndarray]


def forward(
    plans: Sequence[LayerPlan],
    x: np.ndarray,
    params: dict[str, np.ndarray],
    run: Run,
    report: Collection[int] = (),
) -> Trace:
    """Every layer in order on channels-last ``x``; ``report``: the plans whose outputs to hand back."""
    readers = Counter(s for plan in plans for s in plan.sources)
    outputs: dict[int, np.ndarray] = {-1: x}
    caches: list[Any] = [None] * len(plans)
    reported = {}
    owning = replace(run, owns_input=True)
    for plan in plans:
        # a layer that alone reads an output (not the caller's input, not one handed back) may write over it
        sole = plan.sources[0] if len(plan.sources) == 1 else -1
        step = owning if sole != -1 and readers[sole] == 1 and sole not in report else run
        y, cache = plan.kind.forward(plan, [outputs[s] for s in plan.sources], params, step)
        caches[plan.index] = cache
        for s in plan.sources:
            readers[s] -= 1
            if not readers[s]:
                del outputs[s]  # its last reader has run (a backward pass reads the caches instead)
        outputs[plan.index] = y
        if plan.index in report:
            reported[plan.index] = y
    return Trace(outputs[plans[-1].index], caches, reported)


def gradient_paths(plans: Sequence[LayerPlan], need_input: bool, frozen: Collection[str]) -> dict[int, bool]:
    """For each plan (and -1, the input), whether the backward pass needs the gradient of its output: it,
    or a layer it reads from, has parameters that train (or the input's gradient is wanted)."""
    needed = {-1: need_input}
    for plan in plans:
        trains = bool(parameter_shapes(plan)) and plan.name not in frozen
        needed[plan.index] = trains or any(needed[s] for s in plan.sources)
    return needed


def backward(
    plans: Sequence[LayerPlan],
    grad: np.ndarray,
    caches: Sequence[Any],
    params: dict[str, np.ndarray],
    need_input: bool,
    frozen: Collection[str] = (),
    report: Collection[int] = (),
) -> tuple[np.ndarray | None, dict[str, np.ndarray], dict[int, np.ndarray]]:
    """From ``grad``, the gradient of the last plan's output, back to the input's gradient (None without
    ``need_input``); the parameters' gradients (none for ``frozen`` layers); and the gradients of the
    outputs of the plans in ``report``. A layer below everything that trains is not visited."""
    needed = gradient_paths(plans, need_input, frozen)
    pending: dict[int, np.ndarray] = {plans[-1].index: grad}
    grads: dict[str, np.ndarray] = {}
    at: dict[int, np.ndarray] = {}
    for plan in reversed(plans):
        g = pending.pop(plan.index, None)
        if g is None:
            continue
        if plan.index in report:
            at[plan.index] = g
        if not needed[plan.index]:
            continue
        needs = Needs(tuple(needed[s] for s in plan.sources), plan.name not in frozen)
        for s, g_in in zip(plan.sources, plan.kind.backward(plan, g, caches[plan.index], params, grads, needs)):
            if g_in is not None and needed[s]:
                pending[s] = g_in if s not in pending else pending[s] + g_in
    return pending.get(-1), grads, at


def folded_batchnorm(
    plans: Sequence[LayerPlan], params: dict[str, np.ndarray]
) -> tuple[list[LayerPlan], dict[str, np.ndarray]]:
    """For inference: each BatchNorm that alone reads a conv or linear layer folded into that layer's weights,
    and dropped from the plans. With running statistics BatchNorm is ``y·s + (β − mean·s)``, a scale and a
    shift a channel (``s = γ / √(var + ε)``), and so is a change of a weighted layer's output channels:
    ``W' = W·s`` (along the output axis) and ``b' = (b − mean)·s + β`` give the same numbers without a pass
    over the maps. The parameters handed back are a copy with the folded layers' weights replaced."""
    readers = Counter(s for plan in plans for s in plan.sources)
    by_index = {plan.index: plan for plan in plans}
    folded, renamed, kept = dict(params), {}, []
    for plan in plans:
        source = by_index.get(plan.sources[0]) if plan.kind.normalises and len(plan.sources) == 1 else None
        if source is None or not source.kind.has_weights or readers[source.index] != 1:
            kept.append(plan)
            continue
        gamma, beta = params[f"{plan.name}.weight"], params[f"{plan.name}.bias"]
        mean, var = params[f"{plan.name}.running_mean"], params[f"{plan.name}.running_var"]
        scale = gamma / np.sqrt(var + plan.config["eps"])
        weight, bias = params[f"{source.name}.weight"], params[f"{source.name}.bias"]
        folded[f"{source.name}.weight"] = (weight * scale.reshape(-1, *[1] * (weight.ndim - 1))).astype(weight.dtype)
        folded[f"{source.name}.bias"] = ((bias - mean) * scale + beta).astype(bias.dtype)
        renamed[plan.index] = source.index  # its readers read the weighted layer instead
    positions = {-1: -1} | {plan.index: k for k, plan in enumerate(kept)}
    reindexed = [
        replace(plan, index=k, sources=tuple(positions[renamed.get(s, s)] for s in plan.sources))
        for k, plan in enumerate(kept)
    ]
    return reindexed, folded


def swapped_before_pool(plans: Sequence[LayerPlan], training: bool) -> list[LayerPlan]:
    """The plans with each activation that feeds only the max pool right after it moved behind that pool:
    ``max(f(a), f(b)) = f(max(a, b))`` for an activation that never decreases, so the outputs are equal and
    the activation touches a quarter of the values (for a 2x2 pool). For a training step (``training``) only
    ReLUs move: where a window's maximum is positive both orders send the gradient to the same first
    maximum, and where it is not, both send zero."""
    order = list(plans)
    readers = Counter(s for plan in plans for s in plan.sources)
    for k in range(len(order) - 1):
        act, pool = order[k], order[k + 1]
        movable = (
            act.kind.activation and act.kind.commutes_with_max(act) and (act.kind.swaps_in_training or not training)
        )
        if movable and pool.kind.takes_max and pool.sources == (act.index,) and readers[act.index] == 1:
            order[k] = replace(pool, index=k, sources=act.sources, input_shapes=act.input_shapes)
            order[k + 1] = replace(
                act, index=k + 1, sources=(k,), input_shapes=(pool.output_shape,), output_shape=pool.output_shape
            )
    return order
