"""Keeping freed memory in a process that trains, so the next step does not fault it in again; and
giving it back in a process that serves requests, so a burst of large ones does not stay.

A training step allocates and frees hundreds of arrays of 100 kB to a few MB. glibc's malloc gives
such blocks back to the system as they are freed (each one over its mmap threshold is a mapping of its
own, and the heap's top is trimmed), so the next step touches fresh pages and pays a page fault for
every 4 kB of them. Measured on 2 cores: LeNet's step on a slice of 32 took 6.1 ms before and 5.4 ms
after; the digit warp of a batch of 64, 2.8 ms and 1.2 ms.

The price is memory that stays with the process once used, up to its largest step plus
:data:`KEEP_FREED_BYTES`. Only the processes that train ask for it (the training worker, its helper
processes, ``convscope train``), never on import; elsewhere than glibc it does nothing.

A web process wants the opposite. glibc raises its mmap threshold to the size of the largest mapped
block freed so far (up to 32 MB), so after the first large picture its blocks of a few MB come from
per-thread heaps, where freed ones stay: a burst of large requests left a worker at 3 GB for minutes.
:func:`return_freed_memory` fixes the threshold at :data:`SERVING_MMAP_BYTES` (every larger block a
mapping of its own, unmapped when freed), and :func:`trim` gives the heaps' free pages back (called
when the last running compute request ends).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

# mallopt's parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

SERVING_MMAP_BYTES = 1 << 20  # in a web process, blocks over this are mappings of their own
SERVING_TRIM_BYTES = 16 << 20  # and freed memory over this at a heap's top goes back at once
HEAP_BLOCK_BYTES = 32 << 20  # blocks up to this come from the heap, not a mapping each (glibc's own cap)
KEEP_FREED_BYTES = 256 << 20  # freed memory at the heap's top up to this stays with the process


@cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return libc if libc is not None and hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def _tune(mmap_threshold: int, trim_threshold: int) -> bool:
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(libc.mallopt(M_TRIM_THRESHOLD, trim_threshold))


@cache
def keep_freed_memory() -> bool:
    """Asks glibc's malloc to serve blocks of up to :data:`HEAP_BLOCK_BYTES` from its heap and to keep up
    to :data:`KEEP_FREED_BYTES` of freed memory; whether it could (False without glibc). Once a process."""
    return _tune(HEAP_BLOCK_BYTES, KEEP_FREED_BYTES)


@cache
def return_freed_memory() -> bool:
    """Asks glibc's malloc to map every block over :data:`SERVING_MMAP_BYTES` on its own and to give back
    freed memory over :data:`SERVING_TRIM_BYTES`; whether it could (False without glibc). Once a process."""
    return _tune(SERVING_MMAP_BYTES, SERVING_TRIM_BYTES)


def trim() -> None:
    """Gives the free pages of every heap back to the system (glibc's ``malloc_trim``; a no-op elsewhere)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
