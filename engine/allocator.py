"""Keeping freed memory in a process that trains, so the next step does not fault it in again.

A training step allocates and frees hundreds of arrays of 100 kB to a few MB. glibc's malloc gives
such blocks back to the system as they are freed (each one over its mmap threshold is a mapping of its
own, and the heap's top is trimmed), so the next step touches fresh pages and pays a page fault for
every 4 kB of them. Measured on 2 cores: LeNet's step on a slice of 32 took 6.1 ms before and 5.4 ms
after; the digit warp of a batch of 64, 2.8 ms and 1.2 ms.

The price is memory that stays with the process once used, up to its largest step plus
:data:`KEEP_FREED_BYTES`. Only the processes that train ask for it (the training worker, its helper
processes, ``convscope train``), never on import; elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

# mallopt's parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

HEAP_BLOCK_BYTES = 32 << 20  # blocks up to this come from the heap, not a mapping each (glibc's own cap)
KEEP_FREED_BYTES = 256 << 20  # freed memory at the heap's top up to this stays with the process


@cache
def keep_freed_memory() -> bool:
    """Asks glibc's malloc to serve blocks of up to :data:`HEAP_BLOCK_BYTES` from its heap and to keep up
    to :data:`KEEP_FREED_BYTES` of freed memory; whether it could (False without glibc). Once a process."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, HEAP_BLOCK_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP_FREED_BYTES))
