"""A helper process's side of :mod:`engine.processes`: it waits for slices of a training batch, runs each
on the network of the spec it was last sent (weights in the shared block), and writes the gradients back.
Apart from :mod:`engine.processes` because it builds networks, and :mod:`engine.network` sits above the
process pool."""

from __future__ import annotations

import json
from multiprocessing.connection import Connection
from typing import Any

from engine.allocator import keep_freed_memory
from engine.network import Network
from engine.processes import Layout, SharedBlock


class _HelperState:
    """What a helper keeps between slices: the network of the last spec, and views of the shared block
    as the last layout placed them."""

    def __init__(self, memory: SharedBlock) -> None:
        self.memory = memory
        self.network: Any = None
        self.layout: Layout | None = None

    def step(
        self, spec: str | None, size: int, layout: Layout | None, frozen: frozenset[str], rng: Any
    ) -> tuple[float, list[str]]:
        """One slice: its loss, and the names of the gradients written to the shared block."""
        if size != self.memory.size:
            self.memory.attach(size)
        self.layout = layout or self.layout
        if self.layout is None:
            raise RuntimeError("a slice came before its layout")
        memory, layout = self.memory, self.layout
        params = {key: memory.array(place) for key, place in layout.params.items()}
        if spec is not None:
            self.network = None  # a spec that fails to build must not leave the last network in use
            self.network = Network(json.loads(spec), params)
        if self.network is None:
            raise RuntimeError("a slice came before its network's spec")
        self.network.params = params
        x, labels = memory.array(layout.x), memory.array(layout.labels)
        loss, logits, grads = self.network.training_step(x, labels, rng, frozen)
        for key, grad in grads.items():
            memory.array(layout.grads[key])[...] = grad
        memory.array(layout.logits)[...] = logits
        return float(loss), list(grads)


def serve(connection: Connection, memory: SharedBlock) -> None:
    """The helper's loop: one slice per message, until the caller closes the socket."""
    state = _HelperState(memory)
    connection.send("ready")
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return
        try:
            answer: tuple[str, Any] = ("done", state.step(*message))
        except Exception as error:  # the caller computes the slice itself and says why in its log
            answer = ("error", f"{type(error).__name__}: {error}")
        try:
            connection.send(answer)
        except OSError:
            return


def run_helper(arguments: list[str]) -> None:
    """A helper's entry point (:data:`HELPER_MAIN`): its socket's and its shared block's descriptors."""
    keep_freed_memory()
    serve(Connection(int(arguments[0])), SharedBlock(int(arguments[1])))
