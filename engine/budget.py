"""A time budget the engine checks before every pass: work whose caller has stopped waiting (the
server answered 503 after its budget) ends early instead of holding a core.

The budget lives in a context variable, so it follows a request into the threads that compute it and
never leaks into another request's work. Code that sets none (training, the CLI, the tests) runs on.
"""

from __future__ import annotations

import time
from contextvars import ContextVar

from engine.errors import EngineError

_deadline: ContextVar[float | None] = ContextVar("convscope_deadline", default=None)


class OutOfTime(EngineError):
    """The work's time budget ran out between two passes."""


def start(seconds: float) -> None:
    """Sets a budget of ``seconds`` from now for the current context (and the tasks and threads it starts)."""
    _deadline.set(time.monotonic() + seconds)


def check_time() -> None:
    """Raises :class:`OutOfTime` once the current budget has run out."""
    deadline = _deadline.get()
    if deadline is not None and time.monotonic() > deadline:
        raise OutOfTime("the work ran past its time budget and was stopped; ask for less (fewer steps or samples)")
