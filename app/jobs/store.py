"""The store every process shares: job records, each job's events, and blobs (trained models and
their snapshots). Two back ends behind one interface:

- ``sqlite:///path/to/convscope.db`` (the default, under ``CONVSCOPE_DATA_DIR``): one file, in WAL
  mode, so several uvicorn workers and the training worker on one machine read and write it at once;
- ``redis://host:port/db``: for web replicas and training workers on several machines.

A job is a dict. Its fixed part (name, data set, architecture, settings, ...) is written once; the
fields that change while it runs (``status``, ``started``, ``finished``, ``message``, ``metrics``,
``heartbeat``, ``cancel``) are written on their own, so the worker and the web processes never
overwrite each other's changes. Status changes are compare-and-set (:meth:`JobStore.transition`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

MUTABLE = ("status", "started", "finished", "message", "metrics", "heartbeat", "cancel")
ACTIVE = ("queued", "running")
TERMINAL = ("done", "failed", "cancelled")


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
    def transition(self, job_id: str, from_status: Iterable[str], to_status: str, **fields: Any) -> bool:
        """Moves the job to ``to_status`` (and sets ``fields``) only if its status is one of
        ``from_status``; says whether it did. Two processes can never both start or end a job."""

    @abstractmethod
    def recent(self, limit: int) -> list[dict[str, Any]]:
        """The newest jobs first."""

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
    def put_blob(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def get_blob(self, key: str) -> bytes | None: ...

    @abstractmethod
    def delete(self, job_id: str) -> None:
        """Removes a job with its events and its blobs (keys starting ``{job_id}/``)."""

    @abstractmethod
    def finished_before(self, timestamp: float) -> list[str]:
        """Ids of jobs that ended before ``timestamp`` (for the model time-to-live)."""

    def position(self, job_id: str) -> int | None:
        """1 for the next job to start, 2 for the one after, ...; None when not queued."""
        queued = [j["id"] for j in self.active() if j["status"] == "queued"]
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
"""


class SqliteStore(JobStore):
    """One SQLite file in WAL mode; a connection per thread; writes in short immediate transactions."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._connect() as db:
            db.executescript(_SCHEMA)

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
        record = {k: v for k, v in job.items() if k not in (*MUTABLE, "id", "created", "client")}
        self._connect().execute(
            "insert into jobs (id, created, client, status, record) values (?, ?, ?, ?, ?)",
            (job["id"], job["created"], job.get("client"), job["status"], json.dumps(record)),
        )

    def get(self, job_id: str) -> dict[str, Any] | None:
        row = self._connect().execute("select * from jobs where id = ?", (job_id,)).fetchone()
        return self._job(row) if row else None

    def update(self, job_id: str, **fields: Any) -> None:
        bad = set(fields) - set(MUTABLE)
        if bad:
            raise KeyError(f"not a changing field: {', '.join(sorted(bad))}")
        assignments = ", ".join(f"{k} = ?" for k in fields)
        self._connect().execute(f"update jobs set {assignments} where id = ?", [*map(_encode, fields.values()), job_id])

    def transition(self, job_id: str, from_status: Iterable[str], to_status: str, **fields: Any) -> bool:
        sources = list(from_status)
        assignments = ", ".join(["status = ?", *(f"{k} = ?" for k in fields)])
        marks = ", ".join("?" for _ in sources)
        cursor = self._connect().execute(
            f"update jobs set {assignments} where id = ? and status in ({marks})",
            [to_status, *map(_encode, fields.values()), job_id, *sources],
        )
        return cursor.rowcount == 1

    def recent(self, limit: int) -> list[dict[str, Any]]:
        rows = self._connect().execute("select * from jobs order by created desc limit ?", (limit,)).fetchall()
        return [self._job(r) for r in rows]

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

    def put_blob(self, key: str, data: bytes) -> None:
        self._connect().execute("insert or replace into blobs (key, value) values (?, ?)", (key, data))

    def get_blob(self, key: str) -> bytes | None:
        row = self._connect().execute("select value from blobs where key = ?", (key,)).fetchone()
        return bytes(row[0]) if row else None

    def delete(self, job_id: str) -> None:
        db = self._connect()
        db.execute("begin immediate")
        try:
            db.execute("delete from events where job_id = ?", (job_id,))
            db.execute("delete from blobs where key >= ? and key < ?", (f"{job_id}/", f"{job_id}0"))
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
for i = 2, n + 1 do
  if ARGV[i] == status then
    redis.call('HSET', KEYS[1], 'status', ARGV[n + 2])
    for j = n + 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[j], ARGV[j + 1]) end
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


class RedisStore(JobStore):
    """Keys under ``convscope:``: a hash per job, a list of events per job, a string per blob, a
    sorted set of jobs by creation, a set of active jobs and a sorted set of ended jobs."""

    prefix = "convscope:"

    def __init__(self, url: str) -> None:
        import redis

        # redis-py's own annotations cannot say what decode_responses=False returns: bytes
        self.redis: Any = redis.Redis.from_url(url, socket_timeout=10, health_check_interval=30)
        self._transition = self.redis.register_script(_TRANSITION)

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
        record = {k: v for k, v in job.items() if k not in (*MUTABLE, "id", "created", "client")}
        fields = {"record": json.dumps(record), "created": repr(job["created"]), "client": job.get("client") or ""}
        fields["status"] = job["status"]
        pipe = self.redis.pipeline()
        pipe.hset(self._key("job", job["id"]), mapping=fields)
        pipe.zadd(self._key("jobs"), {job["id"]: job["created"]})
        pipe.sadd(self._key("active"), job["id"])
        pipe.execute()

    def get(self, job_id: str) -> dict[str, Any] | None:
        return self._job(job_id, self.redis.hgetall(self._key("job", job_id)))

    def update(self, job_id: str, **fields: Any) -> None:
        bad = set(fields) - set(MUTABLE) | ({"status"} & set(fields))
        if bad:
            raise KeyError(f"not a field update may set: {', '.join(sorted(bad))} (status changes use transition)")
        if self.redis.exists(self._key("job", job_id)):
            self.redis.hset(self._key("job", job_id), mapping=self._flat(fields))

    def transition(self, job_id: str, from_status: Iterable[str], to_status: str, **fields: Any) -> bool:
        sources = list(from_status)
        flat = [x for pair in self._flat(fields).items() for x in pair]
        keys = [self._key("job", job_id), self._key("active"), job_id, self._key("ended")]
        return bool(self._transition(keys=keys, args=[len(sources), *sources, to_status, *flat]))

    def _many(self, ids: list[bytes]) -> list[dict[str, Any]]:
        pipe = self.redis.pipeline()
        for job_id in ids:
            pipe.hgetall(self._key("job", job_id.decode()))
        jobs = [self._job(i.decode(), fields) for i, fields in zip(ids, pipe.execute())]
        return [j for j in jobs if j is not None]

    def recent(self, limit: int) -> list[dict[str, Any]]:
        return self._many(self.redis.zrevrange(self._key("jobs"), 0, limit - 1))

    def active(self) -> list[dict[str, Any]]:
        jobs = self._many(list(self.redis.smembers(self._key("active"))))
        return sorted((j for j in jobs if j["status"] in ACTIVE), key=lambda j: (j["created"], j["id"]))

    def append_event(self, job_id: str, kind: str, data: dict[str, Any]) -> int:
        # the list's new length is the event's id: RPUSH is atomic
        return int(self.redis.rpush(self._key("events", job_id), json.dumps([kind, data])))

    def events(self, job_id: str, after: int = 0) -> list[tuple[int, str, dict[str, Any]]]:
        raw = self.redis.lrange(self._key("events", job_id), after, -1)
        return [(after + i + 1, *json.loads(item)) for i, item in enumerate(raw)]

    def put_blob(self, key: str, data: bytes) -> None:
        self.redis.set(self._key("blob", key), data)

    def get_blob(self, key: str) -> bytes | None:
        return self.redis.get(self._key("blob", key))

    def delete(self, job_id: str) -> None:
        blobs = list(self.redis.scan_iter(match=self._key("blob", f"{job_id}/*"), count=100))
        pipe = self.redis.pipeline()
        pipe.delete(self._key("job", job_id), self._key("events", job_id), *blobs)
        pipe.zrem(self._key("jobs"), job_id)
        pipe.zrem(self._key("ended"), job_id)
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
