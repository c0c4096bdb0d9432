"""Scheduling the engine's passes on the cores: a batch is cut into one slice per core, each slice runs
on a thread of its own (NumPy releases the GIL in its copies and products), and BLAS is held to one
thread meanwhile (two BLAS threads on two cores only fight: measured, several times slower for
mid-sized products). Small batches stay whole: splitting them costs more than it saves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cache
from typing import Any

import numpy as np

from engine.budget import check_time
from engine.cpus import usable_cpus

PARALLEL_MIN_BATCH = 64  # below this, splitting a batch across cores costs more than it saves
PARALLEL_MIN_TRAIN_BATCH = 32  # the same for a training step, whose backward pass doubles the work
BLAS_QUIET_BATCH = 4  # below this, switching BLAS to one thread costs more than its products (measured)
COLUMNS_BUDGET = 64 << 20  # bytes of im2col matrix one chunk of a batch may build


def available_cores() -> int:
    """The cores this process may run on (its affinity and cgroup quota), not every core of the machine."""
    return usable_cpus()


@cache
def _executor(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="network")


@cache
def _blas_controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Holds BLAS to one thread while the engine runs slices of a batch on threads of its own, so
    that (say) two slices with two BLAS threads each never fight over two cores."""
    controller = _blas_controller()
    infos = [i for i in controller.info() if i.get("user_api") == "blas"]
    if max((i.get("num_threads", 1) for i in infos), default=1) == 1:
        yield  # already so (as `convscope serve` runs): skip the switch
        return
    with controller.limit(limits=1, user_api="blas"):
        yield


def slice_bounds(n: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous slices [a, b) covering 0..n, as even as can be."""
    bounds = np.linspace(0, n, parts + 1).astype(int)
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))


def in_slices(
    fn: Callable[..., Any],
    x: np.ndarray,
    *more: Sequence[Any],
    min_batch: int,
    rows: np.ndarray | None = None,
) -> list[Any]:
    """``fn(slice, *(m[k] for m in more))`` on slice k of the batch, one per core, with BLAS held to one
    thread; ``more`` holds per-slice arguments (one entry when the batch stays whole); ``rows``, if
    given, is an array with a row per input, cut like the batch and passed after ``more``. A batch
    under ``min_batch`` is one slice. A caller past its time budget (:mod:`engine.budget`) stops here."""
    check_time()
    cores = available_cores()
    whole = (x, *(m[0] for m in more), *(() if rows is None else (rows,)))
    if len(x) < BLAS_QUIET_BATCH:  # products this small run on one BLAS thread anyway
        return [fn(*whole)]
    with one_blas_thread():
        if len(x) < min_batch or cores == 1:
            return [fn(*whole)]
        jobs = [
            (x[a:b], *(m[i] for m in more), *(() if rows is None else (rows[a:b],)))
            for i, (a, b) in enumerate(slice_bounds(len(x), cores))
        ]
        return list(_executor(cores).map(lambda job: fn(*job), jobs))
