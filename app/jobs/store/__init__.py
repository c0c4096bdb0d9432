"""The store every process shares: job records, each job's events, and blobs (trained models and
their snapshots). Two back ends behind one interface:

- ``sqlite:///path/to/convscope.db`` (the default, under ``CONVSCOPE_DATA_DIR``): one file, in WAL
  mode, so several uvicorn workers and the training worker on one machine read and write it at once;
- ``redis://host:port/db``: for web replicas and training workers on several machines.

A job is a dict. Its fixed part (name, data set, architecture, settings, its ``workspace``, ...) is
written once; the fields that change while it runs (``status``, ``started``, ``finished``, ``message``,
``metrics``, ``heartbeat``, ``cancel``, ``bytes``) are written on their own, so the worker and the web
processes never overwrite each other's changes. Status changes are compare-and-set
(:meth:`JobStore.transition`); a cancel request wins over the end of training (``unless_cancelled``).

Workspaces (who owns what), share links and the queue's fair order live here too, so several web
processes and workers on several machines agree on them: submitting and claiming a job happen under
the store's queue lock (:meth:`JobStore.queue_lock`), so 40 parallel submissions from one workspace
accept exactly its cap.
"""

from __future__ import annotations

from urllib.parse import urlparse

from app.jobs.store.blobs import RedisBlobs, SqliteBlobs
from app.jobs.store.common import ACTIVE, FIXED_COLUMNS, MUTABLE, now
from app.jobs.store.contract import JobStore
from app.jobs.store.documents import RedisDocuments, SqliteDocuments
from app.jobs.store.fairness import TURNS_SECONDS, QueueCaps, QueueFull, fair_order
from app.jobs.store.fairqueue import RedisQueue, SqliteQueue
from app.jobs.store.jobs import RedisJobs, SqliteJobs


class SqliteStore(SqliteJobs, SqliteBlobs, SqliteDocuments, SqliteQueue):
    """The whole store in one SQLite file."""


class RedisStore(RedisJobs, RedisBlobs, RedisDocuments, RedisQueue):
    """The whole store in Redis: for web replicas and training workers on several machines."""


def open_store(url: str) -> JobStore:
    """``sqlite:///path.db`` or ``redis://host:port/db``."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        return SqliteStore(url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else parsed.path)
    if parsed.scheme in ("redis", "rediss", "unix"):
        return RedisStore(url)
    raise ValueError(f"CONVSCOPE_STORE_URL must start with sqlite:/// or redis://, got {url!r}")


__all__ = [
    "ACTIVE", "FIXED_COLUMNS", "MUTABLE", "TURNS_SECONDS", "JobStore", "QueueCaps", "QueueFull", "RedisStore",
    "SqliteStore", "fair_order", "now", "open_store",
]  # fmt: skip
