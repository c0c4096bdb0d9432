"""The engine's one error type: a bad argument, said in words a learner can act on.

It is a ``ValueError``, so plain NumPy code can keep catching that; the app maps it
to HTTP 422 in one place.
"""

from __future__ import annotations

from typing import Any


class EngineError(ValueError):
    """An argument the engine cannot work with: the message says what was wrong and what is allowed."""


class SpecError(EngineError):
    """A network description that cannot be built; names the layer (1-based ``number``, its ``name``)."""

    def __init__(self, message: str, *, index: int | None = None, name: str | None = None):
        where = "" if index is None else f"layer {index + 1}" + (f" ({name})" if name else "") + ": "
        super().__init__(where + message)
        self.index = index
        self.name = name
        self.reason = message

    def layer(self) -> dict[str, Any] | None:
        """The layer at fault as plain data: its spec index, its 1-based number, its name and the reason."""
        if self.index is None:
            return None
        return {"index": self.index, "number": self.index + 1, "name": self.name, "reason": self.reason}
