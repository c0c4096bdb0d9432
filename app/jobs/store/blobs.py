"""Blobs by key, SQLite and Redis side by side."""

from __future__ import annotations

from app.jobs.store.connections import RedisConnection, SqliteConnection


class SqliteBlobs(SqliteConnection):
    def put_blob(self, key: str, data: bytes) -> None:
        self._connect().execute("insert or replace into blobs (key, value) values (?, ?)", (key, data))

    def get_blob(self, key: str) -> bytes | None:
        row = self._connect().execute("select value from blobs where key = ?", (key,)).fetchone()
        return bytes(row[0]) if row else None

    def delete_blob(self, key: str) -> None:
        self._connect().execute("delete from blobs where key = ?", (key,))


class RedisBlobs(RedisConnection):
    def put_blob(self, key: str, data: bytes) -> None:
        self.redis.set(self._key("blob", key), data)

    def get_blob(self, key: str) -> bytes | None:
        return self.redis.get(self._key("blob", key))

    def delete_blob(self, key: str) -> None:
        self.redis.delete(self._key("blob", key))
