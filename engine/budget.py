"""A time budget the engine checks before every pass: work whose caller has stopped waiting (the
server answered 503 after its budget) ends early instead of holding a core.

The budget lives in a context variable, so it follows a request into the threads that compute it and
never leaks into another request's work. Code that sets none (training, the CLI, the tests) runs on.

A request that stores what it computed (a data set's pictures, an imported model) must never be told
503 and have stored anyway (a client that retries would store it twice). Its :class:`Gate` decides
which happens: the server's answer at the deadline *expires* it, the work's first write *commits* it,
and whichever comes first wins; once committed the server waits for the work's own answer.
"""

from __future__ import annotations

import threading
import time
from contextvars import ContextVar

from engine.errors import EngineError

_deadline: ContextVar[float | None] = ContextVar("convscope_deadline", default=None)
_gate: ContextVar[Gate | None] = ContextVar("convscope_gate", default=None)


class OutOfTime(EngineError):
    """The work's time budget ran out between two passes."""


def start(seconds: float) -> None:
    """Sets a budget of ``seconds`` from now for the current context (and the tasks and threads it starts)."""
    _deadline.set(time.monotonic() + seconds)


def check_time() -> None:
    """Raises :class:`OutOfTime` once the current budget has run out (or the caller has had its 503)."""
    deadline, gate = _deadline.get(), _gate.get()
    if (deadline is not None and time.monotonic() > deadline) or (gate is not None and gate.state == "expired"):
        raise OutOfTime("the work ran past its time budget and was stopped; ask for less (fewer steps or samples)")


class Gate:
    """One request's "stored, or told 503": ``expire`` (the server, at the deadline) and ``commit`` (the
    work, before its first write) each succeed only if the other has not happened."""

    def __init__(self) -> None:
        self.state = "open"  # then "expired" or "committed", for good
        self._lock = threading.Lock()

    def expire(self) -> bool:
        """The server is about to answer 503: True if it may (nothing was stored, and nothing will be)."""
        with self._lock:
            if self.state == "open":
                self.state = "expired"
            return self.state == "expired"

    def commit(self) -> None:
        """The work is about to store its result; :class:`OutOfTime` if the caller was already told 503."""
        with self._lock:
            if self.state == "expired":
                raise OutOfTime("the request ran past its time budget before it stored anything; nothing was stored")
            self.state = "committed"


def open_gate() -> Gate:
    """A gate for the current context (a request), which the tasks and threads it starts share."""
    gate = Gate()
    _gate.set(gate)
    return gate


def commit() -> None:
    """Called by work before it writes what a request computed: from here the request answers with what the
    work says, never with the server's 503 (a no-op outside a request)."""
    gate = _gate.get()
    if gate is not None:
        gate.commit()
