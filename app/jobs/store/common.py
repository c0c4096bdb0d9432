"""What every part of the store shares: a job's fields that change while it runs, and the clock."""

from __future__ import annotations

import json
import time
from typing import Any

MUTABLE = ("status", "started", "finished", "message", "metrics", "heartbeat", "cancel", "bytes")
FIXED_COLUMNS = ("id", "created", "client", "workspace")
ACTIVE = ("queued", "running")


def encode(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (dict, list)) else value


def now() -> float:
    return time.time()
