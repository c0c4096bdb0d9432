"""A training step split across the cores: one slice of the batch per core, on helper processes once they
are ready (:mod:`engine.processes`) and on threads until then, the slices' losses and gradients averaged
by their size; that for a network whose layers treat each picture on its own. A BatchNorm network's
slices run on threads of their own that meet at every BatchNorm layer (:class:`engine.norm.AllReduce`),
so that its statistics, and the step, are the whole batch's."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from engine import processes
from engine.budget import check_time
from engine.norm import AllReduce
from engine.parallel import PARALLEL_MIN_TRAIN_BATCH, in_slices, one_blas_thread, slice_bounds

if TYPE_CHECKING:
    from engine.network import Network, Step


def step_in_parts(
    network: Network,
    x: np.ndarray,
    labels: np.ndarray,
    dropout_rng: np.random.Generator | None,
    frozen: frozenset[str],
    cores: int,
) -> Step:
    """:meth:`Network.loss_and_gradients` over ``cores`` slices, each with its own dropout stream spawned
    from ``dropout_rng``."""
    rngs = dropout_rng.spawn(cores) if dropout_rng is not None else [None] * cores
    parts: list[Step]
    with processes.borrowed(cores - 1 if network.shareable(x) else 0) as helpers:
        if helpers:
            parts = _with_helpers(network, x, labels, rngs, helpers, frozen)
        else:
            slices = [labels[a:b] for a, b in slice_bounds(len(x), cores)]
            steps = in_slices(
                network.training_step, x, slices, rngs, [frozen] * cores, min_batch=PARALLEL_MIN_TRAIN_BATCH
            )
            parts = list(steps)
        # averaged while the helpers are still lent to this step: their parts are views of shared memory
        shares = [len(part[1]) / len(x) for part in parts]
        loss = sum(part[0] * share for part, share in zip(parts, shares))
        grads = {k: g * shares[0] for k, g in parts[0][2].items()}
        for part, share in zip(parts[1:], shares[1:]):
            for k, total in grads.items():
                total += part[2][k] * share
        return float(loss), np.concatenate([part[1] for part in parts]), grads


def _with_helpers(
    network: Network,
    x: np.ndarray,
    labels: np.ndarray,
    rngs: Sequence[np.random.Generator | None],
    helpers: Sequence[processes.Helper],
    frozen: frozenset[str],
) -> list[Step]:
    """Slice 0 here, slice k on helper k-1 meanwhile; a slice whose helper failed is computed here after."""
    check_time()
    bounds = slice_bounds(len(x), len(helpers) + 1)
    spec = json.dumps(network.spec)
    labels = labels.astype(np.int64, copy=False)
    for helper, (a, b), rng in zip(helpers, bounds[1:], rngs[1:]):
        helper.submit(spec, network.classes, network.params, frozen, x[a:b], labels[a:b], rng)
    (a, b), started = bounds[0], time.monotonic()
    try:
        with one_blas_thread():
            parts = [network.training_step(x[a:b], labels[a:b], rngs[0], frozen)]
    finally:  # collected even when this slice failed, so the helpers are free for the next step
        wait = processes.SILENCE_SECONDS + processes.SILENCE_FACTOR * (time.monotonic() - started)
        answers = [helper.collect(wait) for helper in helpers]
    for answer, (a, b), rng in zip(answers, bounds[1:], rngs[1:]):
        parts.append(answer if answer is not None else network.training_step(x[a:b], labels[a:b], rng, frozen))
    return parts


@cache
def _meeting_threads(count: int) -> ThreadPoolExecutor:
    """Threads of their own for the slices of a synchronised step: a slice waiting at a BatchNorm must never
    hold a thread another slice needs to start (the shared pool may be busy with other work)."""
    return ThreadPoolExecutor(max_workers=count, thread_name_prefix="synchronised")


def step_synchronised(
    network: Network,
    x: np.ndarray,
    labels: np.ndarray,
    dropout_rng: np.random.Generator | None,
    frozen: frozenset[str],
    cores: int,
) -> Step:
    """:meth:`Network.loss_and_gradients` over ``cores`` slices on threads that meet at every BatchNorm: each
    slice seeds its backward pass with its share of the whole batch's loss, so the gradients add up to the
    whole batch's step (the same step as one batch, to rounding)."""
    check_time()
    bounds = slice_bounds(len(x), cores)
    rngs = dropout_rng.spawn(cores) if dropout_rng is not None else [None] * cores
    meeting = AllReduce(cores)

    def slice_step(rank: int) -> Step:
        a, b = bounds[rank]
        try:
            return network.training_step(x[a:b], labels[a:b], rngs[rank], frozen, meeting, rank, (b - a) / len(x))
        except BaseException:
            meeting.abort()
            raise

    with one_blas_thread():
        parts = list(_meeting_threads(cores).map(slice_step, range(cores)))
    loss = sum(part[0] * (b - a) / len(x) for part, (a, b) in zip(parts, bounds))
    grads = {k: g.copy() for k, g in parts[0][2].items()}
    for part in parts[1:]:
        for k, total in grads.items():
            total += part[2][k]
    return float(loss), np.concatenate([part[1] for part in parts]), grads
