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

import contextlib
import json
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

MUTABLE = ("status", "started", "finished", "message", "metrics", "heartbeat", "cancel", "bytes")
FIXED_COLUMNS = ("id", "created", "client", "workspace")
ACTIVE = ("queued", "running")
TURNS_SECONDS = 3600  # how far back a workspace's started jobs count as turns it has had (a lesson's length)


class QueueFull(Exception):
    """A submission over one of the queue's caps; the message names the count and the cap."""


@dataclass(frozen=True)
class QueueCaps:
    """What :meth:`JobStore.submit` checks, all at once under the queue lock."""

    per_workspace: int  # queued + running jobs of one workspace
    per_address: int  # queued + running jobs from one address (a flood guard: a class shares one)
    queued: int  # queued jobs in all
    seconds_per_workspace: float = float("inf")  # estimated seconds of one workspace's queued + running jobs
    seconds_per_address: float = float("inf")  # and of one address's (free workspaces must not escape the cap)


def fair_order(active: list[dict], served: dict[str, int] | None = None) -> list[dict]:
    """The queued jobs in the order workers take them: round-robin across workspaces, and among the
    workspaces' jobs of one turn, round-robin across addresses. ``served`` counts the jobs each workspace
    has started lately (its turns already taken, running or ended, see :meth:`JobStore.fair_queue`); a
    workspace's next waiting job comes after every workspace with fewer turns. Within a turn an
    address's jobs take turns with every other address's (its n-th waiting job after the others' first
    n-1), and ties go to the older job. So one workspace's ten jobs never hold back another's first,
    and sixty free workspaces from one address hold back another address's first job by one.
    A job whose workspace already runs as many jobs as it may keeps its place but is skipped by
    :meth:`JobStore.claim_next` until one of them ends."""
    turns, address_turns = dict(served or {}), dict[str, int]()
    ranked = []
    for job in sorted((j for j in active if j["status"] == "queued"), key=lambda j: (j["created"], j["id"])):
        owner, address = job.get("workspace") or "", job.get("client") or ""
        ranked.append((turns.get(owner, 0), address_turns.get(address, 0), job["created"], job["id"], job))
        turns[owner] = turns.get(owner, 0) + 1
        address_turns[address] = address_turns.get(address, 0) + 1
    return [entry[-1] for entry in sorted(ranked, key=lambda e: e[:4])]


def _check_seconds(active: list[dict], job: dict, caps: QueueCaps) -> None:
    """Refuses a job that would take its workspace's or its address's estimated training time past its cap."""
    more = job.get("estimate_seconds") or 0
    for field, who, cap in (
        ("workspace", "your workspace", caps.seconds_per_workspace),
        ("client", "your address", caps.seconds_per_address),
    ):
        held = sum(j.get("estimate_seconds") or 0 for j in active if j.get(field) == job.get(field))
        if held + more > cap:
            raise QueueFull(
                f"{who} has {held:,.0f} s of training queued or running and this job would add {more:,.0f} s; "
                f"{cap:,.0f} s is the most one may have waiting (a flood guard: a class behind one address stays "
                "far below it); try again when some have finished"
            )


class JobStore(ABC):
    """What the web processes and the training workers share."""

    @abstractmethod
    def create(self, job: dict[str, Any]) -> None:
        """Adds a job (with ``id``, ``created``, ``client`` and ``status``)."""

    @abstractmethod
    def get(self, job_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def update(self, job_id: str, **fields: Any) -> None:
        """Sets some of the changing fields (``MUTABLE``)."""

    @abstractmethod
    def transition(
        self, job_id: str, from_status: Iterable[str], to_status: str, unless_cancelled: bool = False, **fields: Any
    ) -> bool:
        """Moves the job to ``to_status`` (and sets ``fields``) only if its status is one of
        ``from_status`` (and, with ``unless_cancelled``, no cancel was requested); says whether it did.
        Two processes can never both start or end a job."""

    @abstractmethod
    def active(self) -> list[dict[str, Any]]:
        """Queued and running jobs, oldest first."""

    @abstractmethod
    def append_event(self, job_id: str, kind: str, data: dict[str, Any]) -> int:
        """Adds an event and returns its id: 1, 2, 3, ... per job."""

    @abstractmethod
    def events(self, job_id: str, after: int = 0) -> list[tuple[int, str, dict[str, Any]]]:
        """The job's events with an id above ``after``, in order."""

    @abstractmethod
    def last_event(self, job_id: str, kind: str) -> dict[str, Any] | None:
        """The data of the job's latest event of ``kind`` (read from the end, not the whole history)."""

    @abstractmethod
    def put_blob(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def get_blob(self, key: str) -> bytes | None: ...

    @abstractmethod
    def delete_blob(self, key: str) -> None: ...

    @abstractmethod
    def delete(self, job_id: str) -> None:
        """Removes a job with its events, its blobs (keys starting ``{job_id}/``) and its share links."""

    @abstractmethod
    def finished_before(self, timestamp: float) -> list[str]:
        """Ids of jobs that ended before ``timestamp`` (for the model time-to-live)."""

    @abstractmethod
    def queue_lock(self) -> contextlib.AbstractContextManager[None]:
        """Held while a submission is counted and written, or a job is claimed: one process at a time."""

    @abstractmethod
    def workspace_jobs(self, workspace: str) -> list[dict[str, Any]]:
        """Every job (trained, edited, ...) the workspace owns, newest first."""

    @abstractmethod
    def add_bytes(self, job_id: str, count: int) -> None:
        """Counts ``count`` more bytes stored for the job (events, snapshots, weights)."""

    @abstractmethod
    def request_cancel(self, job_id: str) -> bool:
        """Marks an active job to be cancelled; False if it has already ended. Once this says True the
        job can no longer end ``done`` (see ``unless_cancelled``)."""

    # -- workspaces and share links --

    @abstractmethod
    def create_workspace(self, workspace: dict[str, Any]) -> None:
        """Adds ``{id, token, name, created, address}`` (``token`` is the token's hash, never the token)."""

    @abstractmethod
    def workspace_by_token(self, token_hash: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def get_workspace(self, workspace_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def create_share(self, share_id: str, model_id: str, workspace: str) -> None: ...

    @abstractmethod
    def share(self, share_id: str) -> dict[str, Any] | None:
        """``{id, model, workspace}`` of a share link, or None."""

    @abstractmethod
    def shares_of(self, model_id: str) -> list[str]:
        """The share ids of a model."""

    @abstractmethod
    def remember_share(self, workspace: str, share_id: str) -> None:
        """Lists a share link under the workspace's "shared with you"."""

    @abstractmethod
    def shared_with(self, workspace: str) -> list[str]:
        """Share ids the workspace has opened, newest first."""

    # -- documents: small records of one kind (a class, its members, entries), each indexed by an owner

    @abstractmethod
    def put_doc(self, kind: str, doc_id: str, owner: str, doc: dict[str, Any]) -> None:
        """Writes (or replaces) a document, listed under ``owner`` in the order first written."""

    @abstractmethod
    def get_doc(self, kind: str, doc_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def docs(self, kind: str, owner: str) -> list[dict[str, Any]]:
        """The documents of ``kind`` listed under ``owner``, oldest first."""

    @abstractmethod
    def delete_doc(self, kind: str, doc_id: str) -> None: ...

    @abstractmethod
    def doc_lock(self, name: str) -> contextlib.AbstractContextManager[None]:
        """Holds other processes off while a read-modify-write of documents runs."""

    @abstractmethod
    def started_since(self, timestamp: float) -> list[str]:
        """The workspace of every job started at or after ``timestamp`` (one entry per job)."""

    # -- tallies: counts every process and replica shares (wrong class codes, open event streams), each
    # entry living ``ttl`` seconds unless renewed or removed first

    @abstractmethod
    def tally_add(self, entry: str, caps: Sequence[tuple[str, int]], ttl: float) -> tuple[str, int] | None:
        """Adds ``entry`` under every key of ``caps`` (``[(key, cap), ...]``) unless a key already holds
        ``cap`` live entries: then nothing is added and that key and its count are returned. Atomic."""

    @abstractmethod
    def tally_count(self, key: str) -> int:
        """The live entries under ``key``."""

    @abstractmethod
    def tally_renew(self, entry: str, keys: Sequence[str], ttl: float) -> None:
        """Gives ``entry`` another ``ttl`` seconds under each key it is still under."""

    @abstractmethod
    def tally_remove(self, keys: Sequence[str], entry: str | None = None) -> None:
        """Removes ``entry`` from each key (every entry, when ``entry`` is None)."""

    @abstractmethod
    def ping(self) -> None:
        """Raises if the store cannot be reached."""

    # -- stored bytes: what each address's workspaces keep (models, their snapshots and events, data sets'
    # pictures), and all of it, counted as it is written and deleted

    @abstractmethod
    def add_count(self, key: str, delta: int) -> None:
        """Adds ``delta`` (perhaps negative) to the counter ``key``; atomic."""

    @abstractmethod
    def counts(self, keys: Sequence[str]) -> list[int]:
        """The counters' values (0 for one never added to)."""

    def charge(self, address: str | None, delta: int) -> None:
        """``delta`` bytes more (or fewer) kept by what ``address`` made, and in all."""
        if delta:
            self.add_count(f"bytes:address:{address or ''}", delta)
            self.add_count("bytes:all", delta)

    def stored_bytes(self, address: str | None) -> tuple[int, int]:
        """The bytes kept by what ``address`` made, and by everything."""
        mine, everything = self.counts([f"bytes:address:{address or ''}", "bytes:all"])
        return mine, everything

    # -- the queue --

    def submit(self, job: dict[str, Any], caps: QueueCaps) -> None:
        """Adds a queued job, unless that would pass one of ``caps`` (:class:`QueueFull` then)."""
        with self.queue_lock():
            active = self.active()
            owner, address = job.get("workspace"), job.get("client")
            mine = sum(j.get("workspace") == owner for j in active)
            if mine >= caps.per_workspace:
                raise QueueFull(
                    f"your workspace has {mine} jobs queued or running, and {caps.per_workspace} is the most one "
                    "workspace may have; wait for one to finish or cancel one"
                )
            from_address = sum(j.get("client") == address for j in active)
            if from_address >= caps.per_address:
                raise QueueFull(
                    f"{from_address} jobs from your address are queued or running, the most one address may have "
                    f"({caps.per_address}); try again when some have finished"
                )
            _check_seconds(active, job, caps)
            queued = sum(j["status"] == "queued" for j in active)
            if queued >= caps.queued:
                raise QueueFull(f"the training queue is full ({queued} jobs waiting, at most {caps.queued})")
            self.create(job)

    def claim_next(self, max_running: int, started: float) -> dict[str, Any] | None:
        """Moves the next job in :func:`fair_order` whose workspace runs fewer than ``max_running`` jobs to
        ``running`` and returns it; None when no queued job may start now."""
        with self.queue_lock():
            active = self.active()
            running = Counter(j.get("workspace") or "" for j in active if j["status"] == "running")
            for job in self.fair_queue(active):
                if running[job.get("workspace") or ""] >= max_running:
                    continue
                if self.transition(job["id"], ["queued"], "running", started=started, heartbeat=started):
                    return self.get(job["id"])
        return None

    def fair_queue(self, active: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """The queued jobs in the order workers take them (:func:`fair_order`), of ``active`` (a list the
        caller already read, so that both agree) or of the store's active jobs now."""
        active = self.active() if active is None else active
        queued = [j["created"] for j in active if j["status"] == "queued"]
        if not queued:
            return []
        # a workspace's turns: the jobs it started in the last TURNS_SECONDS (or since the oldest waiting
        # job was queued, if that is longer ago), ended ones too: who trained less lately goes first
        since = min(min(queued), time.time() - TURNS_SECONDS)
        return fair_order(active, Counter(self.started_since(since)))

    def position(self, job_id: str) -> int | None:
        """1 for the next job to start, 2 for the one after, ...; None when not queued."""
        queued = [j["id"] for j in self.fair_queue()]
        return queued.index(job_id) + 1 if job_id in queued else None

    def close(self) -> None:  # noqa: B027 - optional for back ends that hold connections
        """Releases connections."""


def _encode(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (dict, list)) else value


# -- SQLite ---------------------------------------------------------------------------------------

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


class SqliteStore(JobStore):
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

    @staticmethod
    def _job(row: sqlite3.Row) -> dict[str, Any]:
        job = json.loads(row["record"])
        job.update(
            id=row["id"],
            created=row["created"],
            client=row["client"],
            workspace=row["workspace"],
            bytes=row["bytes"],
            status=row["status"],
            cancel=bool(row["cancel"]),
            heartbeat=row["heartbeat"],
            started=row["started"],
            finished=row["finished"],
            message=row["message"],
            metrics=json.loads(row["metrics"]) if row["metrics"] else None,
        )
        return job

    def create(self, job: dict[str, Any]) -> None:
        record = {k: v for k, v in job.items() if k not in (*MUTABLE, *FIXED_COLUMNS)}
        self._connect().execute(
            "insert into jobs (id, created, client, workspace, status, record) values (?, ?, ?, ?, ?, ?)",
            (job["id"], job["created"], job.get("client"), job.get("workspace"), job["status"], json.dumps(record)),
        )

    @contextlib.contextmanager
    def queue_lock(self) -> Iterator[None]:
        db = self._connect()
        db.execute("begin immediate")  # the database's write lock: other processes wait for it
        try:
            yield
        except BaseException:
            db.execute("rollback")
            raise
        db.execute("commit")

    def workspace_jobs(self, workspace: str) -> list[dict[str, Any]]:
        rows = (
            self._connect()
            .execute("select * from jobs where workspace = ? order by created desc, id", (workspace,))
            .fetchall()
        )
        return [self._job(r) for r in rows]

    def add_bytes(self, job_id: str, count: int) -> None:
        row = (
            self._connect()
            .execute("update jobs set bytes = bytes + ? where id = ? returning client", (count, job_id))
            .fetchone()
        )
        if row is not None:
            self.charge(row["client"], count)

    def add_count(self, key: str, delta: int) -> None:
        self._connect().execute(
            "insert into counters (key, value) values (?, ?) on conflict (key) do update set value = value + ?",
            (key, delta, delta),
        )

    def counts(self, keys: Sequence[str]) -> list[int]:
        db = self._connect()
        found = {
            r["key"]: r["value"]
            for r in db.execute(
                f"select key, value from counters where key in ({','.join('?' * len(keys))})", list(keys)
            )
        }
        return [int(found.get(k, 0)) for k in keys]

    def request_cancel(self, job_id: str) -> bool:
        cursor = self._connect().execute(
            "update jobs set cancel = 1 where id = ? and status in ('queued', 'running')", (job_id,)
        )
        return cursor.rowcount == 1

    def create_workspace(self, workspace: dict[str, Any]) -> None:
        self._connect().execute(
            "insert into workspaces (id, token, name, created, address) values (?, ?, ?, ?, ?)",
            tuple(workspace.get(k) for k in ("id", "token", "name", "created", "address")),
        )

    def _workspace(self, column: str, value: str) -> dict[str, Any] | None:
        row = self._connect().execute(f"select * from workspaces where {column} = ?", (value,)).fetchone()
        return dict(row) if row else None

    def workspace_by_token(self, token_hash: str) -> dict[str, Any] | None:
        return self._workspace("token", token_hash)

    def get_workspace(self, workspace_id: str) -> dict[str, Any] | None:
        return self._workspace("id", workspace_id)

    def create_share(self, share_id: str, model_id: str, workspace: str) -> None:
        self._connect().execute(
            "insert into shares (id, model, workspace) values (?, ?, ?)", (share_id, model_id, workspace)
        )

    def share(self, share_id: str) -> dict[str, Any] | None:
        row = self._connect().execute("select * from shares where id = ?", (share_id,)).fetchone()
        return {"id": row["id"], "model": row["model"], "workspace": row["workspace"]} if row else None

    def shares_of(self, model_id: str) -> list[str]:
        return [r[0] for r in self._connect().execute("select id from shares where model = ?", (model_id,))]

    def remember_share(self, workspace: str, share_id: str) -> None:
        self._connect().execute(
            "insert or ignore into shared_with (workspace, share, added) values (?, ?, ?)",
            (workspace, share_id, time.time()),
        )

    def shared_with(self, workspace: str) -> list[str]:
        rows = self._connect().execute(
            "select share from shared_with where workspace = ? order by added desc", (workspace,)
        )
        return [r[0] for r in rows]

    def started_since(self, timestamp: float) -> list[str]:
        rows = self._connect().execute("select coalesce(workspace, '') from jobs where started >= ?", (timestamp,))
        return [r[0] for r in rows]

    def ping(self) -> None:
        self._connect().execute("select 1").fetchone()

    def tally_add(self, entry: str, caps: Sequence[tuple[str, int]], ttl: float) -> tuple[str, int] | None:
        db, clock = self._connect(), time.time()
        with self.queue_lock():
            for key, cap in caps:
                db.execute("delete from tallies where key = ? and expires <= ?", (key, clock))
                count = db.execute("select count(*) from tallies where key = ?", (key,)).fetchone()[0]
                if count >= cap:
                    return key, int(count)
            db.executemany(
                "insert or replace into tallies (key, entry, expires) values (?, ?, ?)",
                [(key, entry, clock + ttl) for key, _ in caps],
            )
        return None

    def tally_count(self, key: str) -> int:
        row = (
            self._connect()
            .execute("select count(*) from tallies where key = ? and expires > ?", (key, time.time()))
            .fetchone()
        )
        return int(row[0])

    def tally_renew(self, entry: str, keys: Sequence[str], ttl: float) -> None:
        self._connect().executemany(
            "update tallies set expires = ? where key = ? and entry = ?", [(time.time() + ttl, k, entry) for k in keys]
        )

    def tally_remove(self, keys: Sequence[str], entry: str | None = None) -> None:
        db = self._connect()
        if entry is None:
            db.executemany("delete from tallies where key = ?", [(k,) for k in keys])
        else:
            db.executemany("delete from tallies where key = ? and entry = ?", [(k, entry) for k in keys])

    def get(self, job_id: str) -> dict[str, Any] | None:
        row = self._connect().execute("select * from jobs where id = ?", (job_id,)).fetchone()
        return self._job(row) if row else None

    def update(self, job_id: str, **fields: Any) -> None:
        bad = set(fields) - set(MUTABLE)
        if bad:
            raise KeyError(f"not a changing field: {', '.join(sorted(bad))}")
        assignments = ", ".join(f"{k} = ?" for k in fields)
        self._connect().execute(f"update jobs set {assignments} where id = ?", [*map(_encode, fields.values()), job_id])

    def transition(
        self, job_id: str, from_status: Iterable[str], to_status: str, unless_cancelled: bool = False, **fields: Any
    ) -> bool:
        sources = list(from_status)
        assignments = ", ".join(["status = ?", *(f"{k} = ?" for k in fields)])
        marks = ", ".join("?" for _ in sources)
        condition = " and cancel = 0" if unless_cancelled else ""
        cursor = self._connect().execute(
            f"update jobs set {assignments} where id = ? and status in ({marks}){condition}",
            [to_status, *map(_encode, fields.values()), job_id, *sources],
        )
        return cursor.rowcount == 1

    def active(self) -> list[dict[str, Any]]:
        rows = (
            self._connect()
            .execute("select * from jobs where status in ('queued', 'running') order by created, id")
            .fetchall()
        )
        return [self._job(r) for r in rows]

    def append_event(self, job_id: str, kind: str, data: dict[str, Any]) -> int:
        db = self._connect()
        # one statement picks the next id and writes, so two writers cannot take the same id
        cursor = db.execute(
            "insert into events (job_id, seq, kind, data) "
            "select ?, coalesce(max(seq), 0) + 1, ?, ? from events where job_id = ? returning seq",
            (job_id, kind, json.dumps(data), job_id),
        )
        return int(cursor.fetchone()[0])

    def events(self, job_id: str, after: int = 0) -> list[tuple[int, str, dict[str, Any]]]:
        rows = (
            self._connect()
            .execute("select seq, kind, data from events where job_id = ? and seq > ? order by seq", (job_id, after))
            .fetchall()
        )
        return [(r["seq"], r["kind"], json.loads(r["data"])) for r in rows]

    def last_event(self, job_id: str, kind: str) -> dict[str, Any] | None:
        row = (
            self._connect()
            .execute("select data from events where job_id = ? and kind = ? order by seq desc limit 1", (job_id, kind))
            .fetchone()
        )
        return json.loads(row["data"]) if row else None

    def put_blob(self, key: str, data: bytes) -> None:
        self._connect().execute("insert or replace into blobs (key, value) values (?, ?)", (key, data))

    def get_blob(self, key: str) -> bytes | None:
        row = self._connect().execute("select value from blobs where key = ?", (key,)).fetchone()
        return bytes(row[0]) if row else None

    def delete_blob(self, key: str) -> None:
        self._connect().execute("delete from blobs where key = ?", (key,))

    def delete(self, job_id: str) -> None:
        db = self._connect()
        db.execute("begin immediate")
        try:
            kept = db.execute("select client, bytes from jobs where id = ?", (job_id,)).fetchone()
            if kept is not None:
                self.charge(kept["client"], -int(kept["bytes"] or 0))
            db.execute("delete from events where job_id = ?", (job_id,))
            db.execute("delete from blobs where key >= ? and key < ?", (f"{job_id}/", f"{job_id}0"))
            db.execute("delete from shared_with where share in (select id from shares where model = ?)", (job_id,))
            db.execute("delete from shares where model = ?", (job_id,))
            db.execute("delete from jobs where id = ?", (job_id,))
            db.execute("commit")
        except BaseException:
            db.execute("rollback")
            raise

    def finished_before(self, timestamp: float) -> list[str]:
        rows = (
            self._connect()
            .execute(
                "select id from jobs where status in ('done', 'failed', 'cancelled') "
                "and coalesce(finished, created) < ?",
                (timestamp,),
            )
            .fetchall()
        )
        return [r[0] for r in rows]

    def put_doc(self, kind: str, doc_id: str, owner: str, doc: dict[str, Any]) -> None:
        self._connect().execute(
            "insert into docs (kind, id, owner, created, doc) values (?, ?, ?, ?, ?) "
            "on conflict (kind, id) do update set doc = excluded.doc, owner = excluded.owner",
            (kind, doc_id, owner, time.time(), json.dumps(doc)),
        )

    def get_doc(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        row = self._connect().execute("select doc from docs where kind = ? and id = ?", (kind, doc_id)).fetchone()
        return json.loads(row["doc"]) if row else None

    def docs(self, kind: str, owner: str) -> list[dict[str, Any]]:
        rows = self._connect().execute(
            "select doc from docs where kind = ? and owner = ? order by created, id", (kind, owner)
        )
        return [json.loads(row["doc"]) for row in rows]

    def delete_doc(self, kind: str, doc_id: str) -> None:
        self._connect().execute("delete from docs where kind = ? and id = ?", (kind, doc_id))

    def doc_lock(self, name: str) -> contextlib.AbstractContextManager[None]:
        return self.queue_lock()  # SQLite has one write lock: the database's

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


# -- Redis ----------------------------------------------------------------------------------------

# compare-and-set of a job's status, with its other fields, in one atomic step
_TRANSITION = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 0 end
local n = tonumber(ARGV[1])
if ARGV[n + 3] == '1' and redis.call('HGET', KEYS[1], 'cancel') == '1' then return 0 end
for i = 2, n + 1 do
  if ARGV[i] == status then
    redis.call('HSET', KEYS[1], 'status', ARGV[n + 2])
    for j = n + 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[j], ARGV[j + 1]) end
    if ARGV[n + 2] == 'running' then
      local clock = redis.call('TIME')
      redis.call('ZADD', KEYS[5], clock[1] + clock[2] / 1e6, KEYS[3])
    end
    if ARGV[n + 2] == 'queued' or ARGV[n + 2] == 'running' then
      redis.call('SADD', KEYS[2], KEYS[3])
    else
      redis.call('SREM', KEYS[2], KEYS[3])
      redis.call('ZADD', KEYS[4], redis.call('TIME')[1], KEYS[3])
    end
    return 1
  end
end
return 0
"""

# tallies: a sorted set per key, each entry scored by when it expires (on Redis's clock, shared by every
# machine); an add checks every key's live count before it touches any
_TALLY_ADD = """
local clock = redis.call('TIME')
local now = clock[1] + clock[2] / 1e6
local ttl = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local count = redis.call('ZCARD', key)
  if count >= tonumber(ARGV[i + 2]) then return {i, count} end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + ttl, ARGV[1])
  if redis.call('TTL', key) < ttl then redis.call('EXPIRE', key, math.ceil(ttl) + 1) end
end
return 0
"""

_TALLY_COUNT = """
local clock = redis.call('TIME')
return redis.call('ZCOUNT', KEYS[1], '(' .. (clock[1] + clock[2] / 1e6), '+inf')
"""

_TALLY_RENEW = """
local clock = redis.call('TIME')
local ttl = tonumber(ARGV[2])
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', clock[1] + clock[2] / 1e6 + ttl, ARGV[1])
  if redis.call('TTL', key) < ttl then redis.call('EXPIRE', key, math.ceil(ttl) + 1) end
end
return 0
"""

# a cancel request lands only on a job that has not ended
_REQUEST_CANCEL = """
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'queued' or status == 'running' then
  redis.call('HSET', KEYS[1], 'cancel', '1')
  return 1
end
return 0
"""


class RedisStore(JobStore):
    """Keys under ``convscope:``: a hash per job, a list of events per job, a string per blob, a set of
    active jobs, a sorted set of ended jobs and one of started jobs; a hash per
    workspace (and its token's hash pointing to it), a sorted set of each workspace's jobs; a hash per
    share link, a set of each model's links and a sorted set of the links each workspace opened."""

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
        self._transition = self.redis.register_script(_TRANSITION)
        self._request_cancel = self.redis.register_script(_REQUEST_CANCEL)
        self._tally_add = self.redis.register_script(_TALLY_ADD)
        self._tally_count = self.redis.register_script(_TALLY_COUNT)
        self._tally_renew = self.redis.register_script(_TALLY_RENEW)

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    @staticmethod
    def _job(job_id: str, fields: dict[bytes, bytes]) -> dict[str, Any] | None:
        if not fields:
            return None
        raw = {k.decode(): v.decode() for k, v in fields.items()}
        job = json.loads(raw.pop("record"))
        number = lambda k: float(raw[k]) if raw.get(k) not in (None, "") else None  # noqa: E731
        job.update(
            id=job_id,
            created=float(raw["created"]),
            client=raw.get("client") or None,
            workspace=raw.get("workspace") or None,
            bytes=int(raw.get("bytes") or 0),
            status=raw["status"],
            cancel=raw.get("cancel") == "1",
            heartbeat=number("heartbeat"),
            started=number("started"),
            finished=number("finished"),
            message=raw.get("message") or None,
            metrics=json.loads(raw["metrics"]) if raw.get("metrics") else None,
        )
        return job

    @staticmethod
    def _flat(fields: dict[str, Any]) -> dict[str, str]:
        out = {}
        for k, v in fields.items():
            v = _encode(v)
            out[k] = "" if v is None else ("1" if v is True else "0" if v is False else str(v))
        return out

    def create(self, job: dict[str, Any]) -> None:
        record = {k: v for k, v in job.items() if k not in (*MUTABLE, *FIXED_COLUMNS)}
        fields = {"record": json.dumps(record), "created": repr(job["created"]), "client": job.get("client") or ""}
        fields.update(status=job["status"], workspace=job.get("workspace") or "", bytes="0")
        pipe = self.redis.pipeline()
        pipe.hset(self._key("job", job["id"]), mapping=fields)
        if job.get("workspace"):
            pipe.zadd(self._key("wsjobs", job["workspace"]), {job["id"]: job["created"]})
        if job["status"] in ACTIVE:
            pipe.sadd(self._key("active"), job["id"])
        else:  # a model stored finished (an edit, a copy) ages towards its time-to-live from now
            pipe.zadd(self._key("ended"), {job["id"]: job["created"]})
        pipe.execute()

    def queue_lock(self) -> contextlib.AbstractContextManager[None]:
        # redis-py's lock: a key with an expiry, released only by its holder (a crashed holder's lapses)
        return self.redis.lock(self._key("queue-lock"), timeout=30, blocking_timeout=15)

    def workspace_jobs(self, workspace: str) -> list[dict[str, Any]]:
        return self._many(self.redis.zrevrange(self._key("wsjobs", workspace), 0, -1))

    def add_bytes(self, job_id: str, count: int) -> None:
        key = self._key("job", job_id)
        client = self.redis.hget(key, "client")
        if client is None:
            return  # deleted meanwhile
        self.redis.hincrby(key, "bytes", count)
        self.charge(client.decode(), count)

    def add_count(self, key: str, delta: int) -> None:
        self.redis.incrby(self._key("count", key), delta)

    def counts(self, keys: Sequence[str]) -> list[int]:
        return [int(v or 0) for v in self.redis.mget([self._key("count", k) for k in keys])]

    def request_cancel(self, job_id: str) -> bool:
        return bool(self._request_cancel(keys=[self._key("job", job_id)]))

    def create_workspace(self, workspace: dict[str, Any]) -> None:
        fields = {k: "" if workspace.get(k) is None else str(workspace[k]) for k in ("token", "name", "address")}
        pipe = self.redis.pipeline()
        pipe.hset(self._key("ws", workspace["id"]), mapping={**fields, "created": repr(workspace["created"])})
        pipe.set(self._key("wstoken", workspace["token"]), workspace["id"])
        pipe.execute()

    def get_workspace(self, workspace_id: str) -> dict[str, Any] | None:
        raw = self.redis.hgetall(self._key("ws", workspace_id))
        if not raw:
            return None
        fields = {k.decode(): v.decode() for k, v in raw.items()}
        return {
            "id": workspace_id,
            "token": fields["token"],
            "name": fields.get("name") or None,
            "created": float(fields["created"]),
            "address": fields.get("address") or None,
        }

    def workspace_by_token(self, token_hash: str) -> dict[str, Any] | None:
        workspace_id = self.redis.get(self._key("wstoken", token_hash))
        return self.get_workspace(workspace_id.decode()) if workspace_id else None

    def create_share(self, share_id: str, model_id: str, workspace: str) -> None:
        pipe = self.redis.pipeline()
        pipe.hset(self._key("share", share_id), mapping={"model": model_id, "workspace": workspace})
        pipe.sadd(self._key("modelshares", model_id), share_id)
        pipe.execute()

    def share(self, share_id: str) -> dict[str, Any] | None:
        raw = self.redis.hgetall(self._key("share", share_id))
        if not raw:
            return None
        return {"id": share_id, "model": raw[b"model"].decode(), "workspace": raw[b"workspace"].decode()}

    def shares_of(self, model_id: str) -> list[str]:
        return sorted(i.decode() for i in self.redis.smembers(self._key("modelshares", model_id)))

    def remember_share(self, workspace: str, share_id: str) -> None:
        self.redis.zadd(self._key("sharedwith", workspace), {share_id: time.time()}, nx=True)

    def shared_with(self, workspace: str) -> list[str]:
        return [i.decode() for i in self.redis.zrevrange(self._key("sharedwith", workspace), 0, -1)]

    def put_doc(self, kind: str, doc_id: str, owner: str, doc: dict[str, Any]) -> None:
        pipe = self.redis.pipeline()
        pipe.hset(self._key("doc", kind, doc_id), mapping={"owner": owner, "doc": json.dumps(doc)})
        pipe.zadd(self._key("docs", kind, owner), {doc_id: time.time()}, nx=True)
        pipe.execute()

    def get_doc(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        raw = self.redis.hget(self._key("doc", kind, doc_id), "doc")
        return json.loads(raw) if raw else None

    def docs(self, kind: str, owner: str) -> list[dict[str, Any]]:
        ids = self.redis.zrange(self._key("docs", kind, owner), 0, -1)
        pipe = self.redis.pipeline()
        for doc_id in ids:
            pipe.hget(self._key("doc", kind, doc_id.decode()), "doc")
        return [json.loads(raw) for raw in pipe.execute() if raw]

    def delete_doc(self, kind: str, doc_id: str) -> None:
        owner = self.redis.hget(self._key("doc", kind, doc_id), "owner")
        pipe = self.redis.pipeline()
        pipe.delete(self._key("doc", kind, doc_id))
        if owner:
            pipe.zrem(self._key("docs", kind, owner.decode()), doc_id)
        pipe.execute()

    def doc_lock(self, name: str) -> contextlib.AbstractContextManager[None]:
        return self.redis.lock(self._key("doclock", name), timeout=30, blocking_timeout=15)

    def started_since(self, timestamp: float) -> list[str]:
        ids = self.redis.zrangebyscore(self._key("started"), timestamp, "+inf")
        pipe = self.redis.pipeline()
        for job_id in ids:
            pipe.hget(self._key("job", job_id.decode()), "workspace")
        return [(w or b"").decode() for w in pipe.execute()]

    def ping(self) -> None:
        self.redis.ping()

    def tally_add(self, entry: str, caps: Sequence[tuple[str, int]], ttl: float) -> tuple[str, int] | None:
        keys = [self._key("tally", key) for key, _ in caps]
        full = self._tally_add(keys=keys, args=[entry, ttl, *(cap for _, cap in caps)])
        return None if full == 0 else (caps[int(full[0]) - 1][0], int(full[1]))

    def tally_count(self, key: str) -> int:
        return int(self._tally_count(keys=[self._key("tally", key)]))

    def tally_renew(self, entry: str, keys: Sequence[str], ttl: float) -> None:
        self._tally_renew(keys=[self._key("tally", k) for k in keys], args=[entry, ttl])

    def tally_remove(self, keys: Sequence[str], entry: str | None = None) -> None:
        pipe = self.redis.pipeline()
        for key in keys:
            if entry is None:
                pipe.delete(self._key("tally", key))
            else:
                pipe.zrem(self._key("tally", key), entry)
        pipe.execute()

    def get(self, job_id: str) -> dict[str, Any] | None:
        return self._job(job_id, self.redis.hgetall(self._key("job", job_id)))

    def update(self, job_id: str, **fields: Any) -> None:
        bad = set(fields) - set(MUTABLE) | ({"status"} & set(fields))
        if bad:
            raise KeyError(f"not a field update may set: {', '.join(sorted(bad))} (status changes use transition)")
        if self.redis.exists(self._key("job", job_id)):
            self.redis.hset(self._key("job", job_id), mapping=self._flat(fields))

    def transition(
        self, job_id: str, from_status: Iterable[str], to_status: str, unless_cancelled: bool = False, **fields: Any
    ) -> bool:
        sources = list(from_status)
        flat = [x for pair in self._flat(fields).items() for x in pair]
        keys = [self._key("job", job_id), self._key("active"), job_id, self._key("ended"), self._key("started")]
        args = [len(sources), *sources, to_status, "1" if unless_cancelled else "0", *flat]
        return bool(self._transition(keys=keys, args=args))

    def _many(self, ids: list[bytes]) -> list[dict[str, Any]]:
        pipe = self.redis.pipeline()
        for job_id in ids:
            pipe.hgetall(self._key("job", job_id.decode()))
        jobs = [self._job(i.decode(), fields) for i, fields in zip(ids, pipe.execute())]
        return [j for j in jobs if j is not None]

    def active(self) -> list[dict[str, Any]]:
        jobs = self._many(list(self.redis.smembers(self._key("active"))))
        return sorted((j for j in jobs if j["status"] in ACTIVE), key=lambda j: (j["created"], j["id"]))

    def append_event(self, job_id: str, kind: str, data: dict[str, Any]) -> int:
        # the list's new length is the event's id: RPUSH is atomic
        return int(self.redis.rpush(self._key("events", job_id), json.dumps([kind, data])))

    def events(self, job_id: str, after: int = 0) -> list[tuple[int, str, dict[str, Any]]]:
        raw = self.redis.lrange(self._key("events", job_id), after, -1)
        return [(after + i + 1, *json.loads(item)) for i, item in enumerate(raw)]

    def last_event(self, job_id: str, kind: str) -> dict[str, Any] | None:
        key, page = self._key("events", job_id), 16
        end = -1
        while True:  # a page at a time from the end: the latest of a frequent kind is a few events back
            raw = self.redis.lrange(key, end - page + 1, end)
            for item in reversed(raw):
                event_kind, data = json.loads(item)
                if event_kind == kind:
                    return dict(data)
            if len(raw) < page:
                return None
            end -= page

    def put_blob(self, key: str, data: bytes) -> None:
        self.redis.set(self._key("blob", key), data)

    def get_blob(self, key: str) -> bytes | None:
        return self.redis.get(self._key("blob", key))

    def delete_blob(self, key: str) -> None:
        self.redis.delete(self._key("blob", key))

    def delete(self, job_id: str) -> None:
        blobs = list(self.redis.scan_iter(match=self._key("blob", f"{job_id}/*"), count=100))
        job = self.get(job_id)
        shares = self.shares_of(job_id)
        if job is not None and self.redis.exists(self._key("job", job_id)):
            self.charge(job.get("client"), -int(job.get("bytes") or 0))
        pipe = self.redis.pipeline()
        pipe.delete(self._key("job", job_id), self._key("events", job_id), self._key("modelshares", job_id), *blobs)
        if shares:
            pipe.delete(*(self._key("share", share) for share in shares))
        if job is not None and job.get("workspace"):
            pipe.zrem(self._key("wsjobs", job["workspace"]), job_id)
        pipe.zrem(self._key("ended"), job_id)
        pipe.zrem(self._key("started"), job_id)
        pipe.srem(self._key("active"), job_id)
        pipe.execute()

    def finished_before(self, timestamp: float) -> list[str]:
        return [i.decode() for i in self.redis.zrangebyscore(self._key("ended"), "-inf", timestamp)]

    def close(self) -> None:
        self.redis.close()


def open_store(url: str) -> JobStore:
    """``sqlite:///path.db`` or ``redis://host:port/db``."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        return SqliteStore(url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else parsed.path)
    if parsed.scheme in ("redis", "rediss", "unix"):
        return RedisStore(url)
    raise ValueError(f"CONVSCOPE_STORE_URL must start with sqlite:/// or redis://, got {url!r}")


def now() -> float:
    return time.time()
