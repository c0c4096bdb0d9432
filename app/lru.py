"""A least-recently-used cache bounded in bytes, not entries: one wide model or one big feature matrix
must not be able to push a process's memory past its setting, however few of them there are."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class ByteLRU(Generic[V]):
    """``get``/``put`` by key; ``size(value)`` says what a value weighs. A value heavier than the whole
    budget is not kept at all (it is used once and dropped)."""

    def __init__(self, budget_bytes: int, size: Callable[[V], int]) -> None:
        self.budget = budget_bytes
        self.size = size
        self.used = 0
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: Hashable, value: V) -> None:
        with self._lock:
            self._put(key, value)

    def resize(self, key: Hashable) -> None:
        """Weighs a kept value again after it grew (a lazily added part)."""
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._put(key, item[0])

    def _put(self, key: Hashable, value: V) -> None:
        self._drop(key)
        weight = self.size(value)
        if weight <= self.budget:
            self._items[key] = (value, weight)
            self.used += weight
        while self.used > self.budget:
            self._drop(next(iter(self._items)))

    def discard(self, match: Callable[[Hashable], bool]) -> None:
        with self._lock:
            for key in [k for k in self._items if match(k)]:
                self._drop(key)

    def _drop(self, key: Hashable) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self.used -= item[1]

    def __len__(self) -> int:
        return len(self._items)
