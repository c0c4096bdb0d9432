"""The two back ends' connections: a SQLite file in WAL mode (a connection per thread) and a Redis client.
Each concern's module (:mod:`.jobs`, :mod:`.blobs`, :mod:`.documents`, :mod:`.fairqueue`) builds on them."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path
from typing import Any

from app.jobs.store.contract import JobStore

_SCHEMA = """
create table if not exists jobs (
    id text primary key, created real not null, client text, status text not null,
    cancel integer not null default 0, heartbeat real, started real, finished real,
    message text, metrics text, record text not null);
create index if not exists jobs_status_created on jobs (status, created);
create index if not exists jobs_created on jobs (created);
create table if not exists events (
    job_id text not null, seq integer not null, kind text not null, data text not null,
    primary key (job_id, seq));
create table if not exists blobs (key text primary key, value blob not null);
create table if not exists workspaces (
    id text primary key, token text unique not null, name text, created real not null, address text);
create table if not exists shares (id text primary key, model text not null, workspace text not null);
create index if not exists shares_model on shares (model);
create table if not exists shared_with (
    workspace text not null, share text not null, added real not null, primary key (workspace, share));
create table if not exists docs (
    kind text not null, id text not null, owner text not null, created real not null, doc text not null,
    primary key (kind, id));
create index if not exists docs_owner on docs (kind, owner, created);
create table if not exists tallies (
    key text not null, entry text not null, expires real not null, primary key (key, entry));
create table if not exists counters (key text primary key, value integer not null);
"""

# columns added after the first release: a store written by it is brought up to date on open
_NEW_COLUMNS = {"workspace": "text", "bytes": "integer not null default 0"}


class SqliteConnection(JobStore):
    """One SQLite file in WAL mode; a connection per thread; writes in short immediate transactions."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        db = self._connect()
        db.executescript(_SCHEMA)
        have = {row["name"] for row in db.execute("pragma table_info(jobs)")}
        for column, kind in _NEW_COLUMNS.items():
            if column not in have:
                with contextlib.suppress(sqlite3.OperationalError):  # another process added it first
                    db.execute(f"alter table jobs add column {column} {kind}")
        db.execute("create index if not exists jobs_workspace on jobs (workspace, created)")
        db.execute("create index if not exists jobs_started on jobs (started)")

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            # autocommit mode; transactions are opened explicitly where several statements must agree
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            db.execute("pragma journal_mode=wal")
            db.execute("pragma synchronous=normal")
            db.row_factory = sqlite3.Row
            self._local.db = db
        return db

    def ping(self) -> None:
        self._connect().execute("select 1").fetchone()

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


class RedisConnection(JobStore):
    """Keys under ``convscope:``: a hash per job, a list of events per job, a string per blob, a set of
    active jobs, a sorted set of ended jobs and one of started jobs; a hash per workspace (and its token's
    hash pointing to it), a sorted set of each workspace's jobs; a hash per share link, a set of each
    model's links and a sorted set of the links each workspace opened; documents, tallies and counters."""

    prefix = "convscope:"

    def __init__(self, url: str) -> None:
        import redis
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry

        # a store that is down is told fast (the web answers 503, the worker retries on its own); redis-py's
        # own annotations cannot say what decode_responses=False returns: bytes
        self.redis: Any = redis.Redis.from_url(
            url,
            socket_timeout=5,
            socket_connect_timeout=2,
            health_check_interval=30,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
        )

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def ping(self) -> None:
        self.redis.ping()

    def close(self) -> None:
        self.redis.close()
