"""How many CPUs the engine (and the server's worker count) may use."""

from __future__ import annotations

import math
import os
from functools import cache
from pathlib import Path


@cache
def usable_cpus() -> int:
    """The CPUs this process may really use: its affinity, capped by a cgroup CPU quota (as
    ``docker run --cpus=2`` sets on a 32-core host), rounded up."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    quota = cgroup_quota()
    return max(1, min(cpus, quota) if quota else cpus)


def cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """CPUs allowed by the cgroup (v2 ``cpu.max``, or v1 ``cfs_quota_us / cfs_period_us``), if limited."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 else max(1, math.ceil(quota_us / period_us))
    except (OSError, ValueError):
        return None
