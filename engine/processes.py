"""Helper processes: the slices of a training step run in processes of their own, not in threads.

Why processes: a training step is a few hundred NumPy calls, most of them tens of microseconds long.
Threads share the GIL, and a matrix product lets it go but copies, pools and activations mostly keep
it, so two threads spend the step handing it back and forth (measured on 2 cores: LeNet's step at
batch 64 took 8.3-9.0 ms on two threads, 10 ms on one, and 6.4-6.9 ms with a helper process).

How: a step whose batch is large enough sends each slice but the first to a helper, computes the
first itself, and averages the gradients by slice size as the threads did; every slice gets the same
dropout stream as on a thread, so the result is the same. Each helper is a Python started as
``python -c`` importing this module (it never imports the caller's ``__main__``), joined to this
process by a socket for short messages and one block of shared memory (a memfd) for the arrays:
parameters, the slice and its labels go in, logits and gradients come out. Only the dropout generator,
the frozen layers' names and, when they change, the spec and the layout are pickled. A helper builds
the network once per spec and reads the parameters in place.

Nothing is lost when a helper fails: one that dies, answers with an error or is silent too long is
stopped and its slice is computed here. A later step starts a new one (:data:`MAX_STARTS` in all per
process, then threads only). Helpers start in the background and steps run on threads until they
are ready; they end with this process, whose closed socket tells them to.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import mmap
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("convscope.engine")

MAX_STARTS = 4  # helpers started per process, restarts included; past it, steps stay on threads
SILENCE_SECONDS = 5.0  # a helper may take this long beyond ``SILENCE_FACTOR`` times the caller's own slice
SILENCE_FACTOR = 20
ALIGN = 64  # bytes: every array in the shared block starts on a cache line

# what a helper runs: an import of its side (engine.helper, which builds networks: this module sits below
# engine.network and never imports it), not ``-m``, which would load the module twice
HELPER_MAIN = "import sys; from engine.helper import run_helper; run_helper(sys.argv[1:])"
Part = tuple[float, np.ndarray, dict[str, np.ndarray]]  # a slice's loss, logits and gradients


@dataclass(frozen=True)
class Place:
    """Where one array lives in the shared block: bytes [offset, end)."""

    offset: int
    shape: tuple[int, ...]
    dtype: str
    end: int


@dataclass(frozen=True)
class Layout:
    """The shared block of one step's slice: what goes in (parameters, inputs, labels) and what comes
    back (gradients, logits)."""

    params: dict[str, Place]
    grads: dict[str, Place]
    x: Place
    labels: Place
    logits: Place

    @property
    def size(self) -> int:
        return max(self.logits.end, 1)


def plan_layout(params: Mapping[str, np.ndarray], x_shape: tuple[int, ...], classes: int) -> Layout:
    """Places for a slice of inputs ``x_shape`` (n, C, H, W), float32 throughout but int64 labels (a place
    for every parameter's gradient; a frozen layer's stays unwritten); the same object for the same
    shapes, so a helper is sent it only when it changes."""
    return _layout(tuple((key, value.shape) for key, value in params.items()), tuple(x_shape), classes)


@functools.lru_cache(maxsize=16)
def _layout(shapes: tuple[tuple[str, tuple[int, ...]], ...], x_shape: tuple[int, ...], classes: int) -> Layout:
    end = 0

    def place(shape: tuple[int, ...], dtype: str = "float32") -> Place:
        nonlocal end
        start = end
        stop = start + math.prod(shape) * np.dtype(dtype).itemsize
        end = -(-stop // ALIGN) * ALIGN
        return Place(start, tuple(int(s) for s in shape), dtype, stop)

    weights = {key: place(shape) for key, shape in shapes}
    grads = {key: place(shape) for key, shape in shapes}
    x = place(x_shape)
    labels = place((x_shape[0],), "int64")
    return Layout(weights, grads, x, labels, place((x_shape[0], classes)))


class SharedBlock:
    """Memory both processes map: a memfd on Linux (a temporary file elsewhere), grown to the largest
    step it has carried and never shrunk."""

    def __init__(self, fd: int | None = None) -> None:
        """A new block, or (in the helper) the one behind the inherited descriptor ``fd``."""
        memfd = getattr(os, "memfd_create", None)
        if fd is None:
            fd = memfd("convscope-helper") if memfd else os.dup(tempfile.TemporaryFile().fileno())
        self.fd = fd
        self.size = 0
        self.bytes = np.zeros(0, np.uint8)

    def ensure(self, size: int) -> None:
        if size > self.size:
            os.ftruncate(self.fd, size)
            self.attach(size)

    def attach(self, size: int) -> None:
        """Maps the first ``size`` bytes (the other process has grown the block to that)."""
        self.bytes = np.frombuffer(mmap.mmap(self.fd, size), np.uint8)
        self.size = size

    def array(self, place: Place) -> np.ndarray:
        return self.bytes[place.offset : place.end].view(place.dtype).reshape(place.shape)

    def close(self) -> None:
        self.bytes = np.zeros(0, np.uint8)
        with contextlib.suppress(OSError):
            os.close(self.fd)


class Helper:
    """One helper process, seen from the caller: it takes a slice (:meth:`submit`) and hands back its
    loss, logits and gradients (:meth:`collect`), or None when it failed."""

    def __init__(self) -> None:
        self.memory = SharedBlock()
        ours, theirs = socket.socketpair()
        root = str(Path(__file__).resolve().parents[1])
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
            "OPENBLAS_NUM_THREADS": "1",  # the helper is one core's worth of work
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        command = [sys.executable, "-c", HELPER_MAIN, str(theirs.fileno()), str(self.memory.fd)]
        try:
            self.process = subprocess.Popen(
                command, pass_fds=(theirs.fileno(), self.memory.fd), env=env, stdin=subprocess.DEVNULL
            )
        except OSError:
            ours.close()
            self.memory.close()
            raise
        finally:
            theirs.close()
        self.connection = Connection(ours.detach())
        self.ready = False
        self.alive = True
        self.spec_sent: str | None = None
        self.layout_sent: Layout | None = None
        self.pending: Layout | None = None  # the layout of the slice submitted and not yet collected

    def is_ready(self) -> bool:
        """Whether the helper has started (it says so once, after its imports); never waits."""
        if self.alive and not self.ready:
            try:
                if self.connection.poll(0):
                    self.ready = self.connection.recv() == "ready"
            except (EOFError, OSError):
                self.stop()
        return self.ready and self.alive

    def submit(
        self,
        spec: str,
        classes: int,
        params: Mapping[str, np.ndarray],
        frozen: frozenset[str],
        x: np.ndarray,
        labels: np.ndarray,
        rng: Any,
    ) -> None:
        """Starts the helper on one slice of the network ``spec`` (JSON); it works while the caller
        computes its own. ``rng`` is the slice's dropout generator (or None); ``frozen`` layers get no
        gradients."""
        layout = plan_layout(params, x.shape, classes)
        self.memory.ensure(layout.size)
        for key, value in params.items():
            self.memory.array(layout.params[key])[...] = value
        self.memory.array(layout.x)[...] = x
        self.memory.array(layout.labels)[...] = labels
        # the spec and the layout go only when they change: the helper keeps the last ones it was sent
        message = (
            spec if spec != self.spec_sent else None,
            self.memory.size,
            layout if layout is not self.layout_sent else None,
            frozen,
            rng,
        )
        try:
            self.connection.send(message)
        except OSError:
            self.stop()
            return
        self.spec_sent, self.layout_sent, self.pending = spec, layout, layout

    def collect(self, wait_seconds: float) -> Part | None:
        """The slice's loss, logits and gradients, or None if the helper died, failed or was silent for
        ``wait_seconds`` (then it is stopped). The arrays are views of the shared block, good until the
        next :meth:`submit`."""
        layout, self.pending = self.pending, None
        if layout is None or not self.alive:
            return None
        try:
            if not self.connection.poll(wait_seconds):
                log.warning("a helper process was silent for %.1f s; stopped, its slice computed here", wait_seconds)
                self.stop()
                return None
            kind, detail = self.connection.recv()
        except (EOFError, OSError):
            log.warning("a helper process ended during a step; its slice is computed here")
            self.stop()
            return None
        if kind != "done":
            log.warning("a helper process could not compute its slice (%s); computed here", detail)
            return None
        loss, computed = detail  # the gradients the helper wrote: none for frozen layers
        grads = {key: self.memory.array(layout.grads[key]) for key in computed}
        return float(loss), self.memory.array(layout.logits), grads

    def stop(self) -> None:
        self.alive = False
        with contextlib.suppress(OSError):
            self.connection.close()
        if self.process.poll() is None:
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        self.memory.close()


@dataclass
class _Pool:
    """This process's helpers, and the lock that lends them to one step at a time."""

    helpers: list[Helper] = field(default_factory=list)
    starts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


_enabled = True
_pool = _Pool()


def use_helper_processes(enabled: bool) -> None:
    """Turns helper processes on or off for this process (off: slices run on threads)."""
    global _enabled
    _enabled = enabled
    if not enabled:
        shut_down()


def shut_down() -> None:
    """Stops this process's helpers (they would stop on their own when it exits)."""
    with _pool.lock:
        for helper in _pool.helpers:
            helper.stop()
        _pool.helpers.clear()
        _pool.starts = 0  # a helper stopped on purpose is no failure


def _reset_after_fork() -> None:
    """A forked child must not talk to its parent's helpers: it starts its own when it needs them."""
    global _pool
    _pool = _Pool()


os.register_at_fork(after_in_child=_reset_after_fork)


@contextlib.contextmanager
def borrowed(count: int) -> Iterator[list[Helper]]:
    """``count`` ready helpers for one step, or none (off, still starting, lent to another step, or given
    up on): the caller then runs its slices on threads. Starts the missing helpers in the background."""
    if not _enabled or count < 1:
        yield []
        return
    pool = _pool
    if not pool.lock.acquire(blocking=False):
        yield []  # another step (a second training slot) has them
        return
    try:
        _replace_stopped(pool, count)
        ready = [helper for helper in pool.helpers if helper.is_ready()]
        yield ready if len(ready) == count else []
    finally:
        pool.lock.release()


def _replace_stopped(pool: _Pool, count: int) -> None:
    pool.helpers[:] = [helper for helper in pool.helpers if helper.alive]
    while len(pool.helpers) < count and pool.starts < MAX_STARTS:
        pool.starts += 1
        try:
            pool.helpers.append(Helper())
        except OSError as error:  # no memfd, no process: threads it is
            log.warning("could not start a helper process (%s); steps run on threads", error)
            pool.starts = MAX_STARTS


def wait_until_ready(count: int, timeout: float = 30.0) -> bool:
    """Starts ``count`` helpers if they are not yet, and waits until they are ready (benchmarks and tests
    use this, so that every step they time runs on the helpers)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with borrowed(count) as helpers:
            if len(helpers) == count:
                return True
        time.sleep(0.02)
    return False
