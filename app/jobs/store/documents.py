"""Workspaces, share links, documents, tallies and counters, SQLite and Redis side by side."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from app.jobs.store.connections import RedisConnection, SqliteConnection

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


class SqliteDocuments(SqliteConnection):
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


class RedisDocuments(RedisConnection):
    @cached_property
    def _tally_add(self) -> Any:
        return self.redis.register_script(_TALLY_ADD)

    @cached_property
    def _tally_count(self) -> Any:
        return self.redis.register_script(_TALLY_COUNT)

    @cached_property
    def _tally_renew(self) -> Any:
        return self.redis.register_script(_TALLY_RENEW)

    def create_workspace(self, workspace: dict[str, Any]) -> None:
        fields = {k: "" if workspace.get(k) is None else str(workspace[k]) for k in ("token", "name", "address")}
        pipe = self.redis.pipeline()
        pipe.hset(self._key("ws", workspace["id"]), mapping={**fields, "created": repr(workspace["created"])})
        pipe.set(self._key("wstoken", workspace["token"]), workspace["id"])
        pipe.execute()

    def workspace_by_token(self, token_hash: str) -> dict[str, Any] | None:
        workspace_id = self.redis.get(self._key("wstoken", token_hash))
        return self.get_workspace(workspace_id.decode()) if workspace_id else None

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

    def add_count(self, key: str, delta: int) -> None:
        self.redis.incrby(self._key("count", key), delta)

    def counts(self, keys: Sequence[str]) -> list[int]:
        return [int(v or 0) for v in self.redis.mget([self._key("count", k) for k in keys])]
