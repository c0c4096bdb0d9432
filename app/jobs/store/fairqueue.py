"""The fair queue's lock, SQLite and Redis side by side (the rules are :mod:`.contract`'s and
:mod:`.fairness`'s): the database's write lock, or a Redis lock only its holder releases."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from app.jobs.store.connections import RedisConnection, SqliteConnection


class SqliteQueue(SqliteConnection):
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


class RedisQueue(RedisConnection):
    def queue_lock(self) -> contextlib.AbstractContextManager[None]:
        # redis-py's lock: a key with an expiry, released only by its holder (a crashed holder's lapses)
        return self.redis.lock(self._key("queue-lock"), timeout=30, blocking_timeout=15)
