"""Jobs and their events, SQLite and Redis side by side: a row (a hash) per job, its events in order, the
active, ended and started jobs indexed for the queue and the time to live."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from functools import cached_property
from typing import Any

from app.jobs.store.common import ACTIVE, FIXED_COLUMNS, MUTABLE, encode
from app.jobs.store.connections import RedisConnection, SqliteConnection

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

# a cancel request lands only on a job that has not ended
_REQUEST_CANCEL = """
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'queued' or status == 'running' then
  redis.call('HSET', KEYS[1], 'cancel', '1')
  return 1
end
return 0
"""


class SqliteJobs(SqliteConnection):
    def create(self, job: dict[str, Any]) -> None:
        record = {k: v for k, v in job.items() if k not in (*MUTABLE, *FIXED_COLUMNS)}
        self._connect().execute(
            "insert into jobs (id, created, client, workspace, status, record) values (?, ?, ?, ?, ?, ?)",
            (job["id"], job["created"], job.get("client"), job.get("workspace"), job["status"], json.dumps(record)),
        )

    def get(self, job_id: str) -> dict[str, Any] | None:
        row = self._connect().execute("select * from jobs where id = ?", (job_id,)).fetchone()
        return self._job(row) if row else None

    def update(self, job_id: str, **fields: Any) -> None:
        bad = set(fields) - set(MUTABLE)
        if bad:
            raise KeyError(f"not a changing field: {', '.join(sorted(bad))}")
        assignments = ", ".join(f"{k} = ?" for k in fields)
        self._connect().execute(f"update jobs set {assignments} where id = ?", [*map(encode, fields.values()), job_id])

    def transition(
        self, job_id: str, from_status: Iterable[str], to_status: str, unless_cancelled: bool = False, **fields: Any
    ) -> bool:
        sources = list(from_status)
        assignments = ", ".join(["status = ?", *(f"{k} = ?" for k in fields)])
        marks = ", ".join("?" for _ in sources)
        condition = " and cancel = 0" if unless_cancelled else ""
        cursor = self._connect().execute(
            f"update jobs set {assignments} where id = ? and status in ({marks}){condition}",
            [to_status, *map(encode, fields.values()), job_id, *sources],
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

    def request_cancel(self, job_id: str) -> bool:
        cursor = self._connect().execute(
            "update jobs set cancel = 1 where id = ? and status in ('queued', 'running')", (job_id,)
        )
        return cursor.rowcount == 1

    def started_since(self, timestamp: float) -> list[str]:
        rows = self._connect().execute("select coalesce(workspace, '') from jobs where started >= ?", (timestamp,))
        return [r[0] for r in rows]

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


class RedisJobs(RedisConnection):
    @cached_property
    def _transition(self) -> Any:
        return self.redis.register_script(_TRANSITION)

    @cached_property
    def _request_cancel(self) -> Any:
        return self.redis.register_script(_REQUEST_CANCEL)

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

    def workspace_jobs(self, workspace: str) -> list[dict[str, Any]]:
        return self._many(self.redis.zrevrange(self._key("wsjobs", workspace), 0, -1))

    def add_bytes(self, job_id: str, count: int) -> None:
        key = self._key("job", job_id)
        client = self.redis.hget(key, "client")
        if client is None:
            return  # deleted meanwhile
        self.redis.hincrby(key, "bytes", count)
        self.charge(client.decode(), count)

    def request_cancel(self, job_id: str) -> bool:
        return bool(self._request_cancel(keys=[self._key("job", job_id)]))

    def started_since(self, timestamp: float) -> list[str]:
        ids = self.redis.zrangebyscore(self._key("started"), timestamp, "+inf")
        pipe = self.redis.pipeline()
        for job_id in ids:
            pipe.hget(self._key("job", job_id.decode()), "workspace")
        return [(w or b"").decode() for w in pipe.execute()]

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

    def _many(self, ids: list[bytes]) -> list[dict[str, Any]]:
        pipe = self.redis.pipeline()
        for job_id in ids:
            pipe.hgetall(self._key("job", job_id.decode()))
        jobs = [self._job(i.decode(), fields) for i, fields in zip(ids, pipe.execute())]
        return [j for j in jobs if j is not None]

    @staticmethod
    def _flat(fields: dict[str, Any]) -> dict[str, str]:
        out = {}
        for k, v in fields.items():
            v = encode(v)
            out[k] = "" if v is None else ("1" if v is True else "0" if v is False else str(v))
        return out
