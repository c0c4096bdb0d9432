"""Streams a job's events to any number of clients for the price of one: per process, one poller
per followed job reads new events from the store and wakes every client waiting on that job.

A client that connects late (or reconnects with ``Last-Event-ID``) first gets what it missed from
the events kept here; a client that disconnects stops nothing but its own stream. Each workspace and
each address may hold a bounded number of streams open in a process (:meth:`EventHub.admit`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import anyio
from anyio import CapacityLimiter

from app.config import Settings
from app.errors import OverQuota
from app.jobs.store import JobStore
from app.jobs.worker import reap_stale

END_EVENTS = ("done", "failed", "cancelled")


@dataclass
class _Feed:
    events: list[tuple[int, str, dict]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    listeners: int = 0
    task: asyncio.Task | None = None
    ended: bool = False


class EventHub:
    """One per web process (on ``app.state``); store reads run on a few threads of their own so
    they never wait behind the compute slots."""

    def __init__(self, store: JobStore, settings: Settings) -> None:
        self.store = store
        self.stale_seconds = settings.job_stale_seconds
        self.poll_seconds, self.heartbeat_seconds = settings.event_poll_seconds, settings.stream_heartbeat_seconds
        self.feeds: dict[str, _Feed] = {}
        self.limiter = CapacityLimiter(4)
        self.per_workspace, self.per_address = settings.max_streams_per_workspace, settings.max_streams_per_address
        self.open: dict[str, int] = {}  # open streams by "w:<workspace>" and "a:<address>"

    def admit(self, workspace: str | None, address: str) -> list[str]:
        """Counts a new stream against its workspace's and address's bounds (429 past either); the keys
        returned are given back by :meth:`release` when the stream ends."""
        keys = [f"a:{address}"] + ([f"w:{workspace}"] if workspace else [])
        if workspace and self.open.get(keys[1], 0) >= self.per_workspace:
            raise OverQuota(
                f"your workspace has {self.open[keys[1]]} event streams open, the most one may have "
                f"({self.per_workspace}); close a tab that follows a job",
                retry_after=5,
            )
        if self.open.get(keys[0], 0) >= self.per_address:
            raise OverQuota(
                f"{self.open[keys[0]]} event streams are open from your address, the most one address may have "
                f"({self.per_address}); try again in a moment",
                retry_after=5,
            )
        for key in keys:
            self.open[key] = self.open.get(key, 0) + 1
        return keys

    def release(self, keys: list[str]) -> None:
        for key in keys:
            self.open[key] -= 1
            if self.open[key] <= 0:
                del self.open[key]

    async def _read(self, job_id: str, after: int):
        return await anyio.to_thread.run_sync(self.store.events, job_id, after, limiter=self.limiter)

    async def _poll(self, job_id: str, feed: _Feed) -> None:
        idle = 0
        while feed.listeners > 0:
            after = feed.events[-1][0] if feed.events else 0
            new = await self._read(job_id, after)
            if new:
                feed.events.extend(new)
                feed.ended = feed.ended or any(kind in END_EVENTS for _, kind, _ in new)
                feed.changed.set()
                feed.changed = asyncio.Event()
                idle = 0
            elif not feed.ended:
                idle += 1
                if idle % max(1, round(10 / self.poll_seconds)) == 0:  # every ten quiet seconds: has it a worker?
                    await anyio.to_thread.run_sync(reap_stale, self.store, self.stale_seconds, limiter=self.limiter)
            if feed.ended:
                return
            await asyncio.sleep(self.poll_seconds)

    async def follow(self, job_id: str, after: int, admitted: list[str]) -> AsyncIterator[str]:
        """Server-sent events after id ``after``, until the job ends; heartbeat comments meanwhile. The
        stream's ``admitted`` places (:meth:`admit`) are released when it ends, however it ends."""
        try:
            async for chunk in self._follow(job_id, after):
                yield chunk
        finally:
            self.release(admitted)

    async def _follow(self, job_id: str, after: int = 0) -> AsyncIterator[str]:
        feed = self.feeds.setdefault(job_id, _Feed())
        feed.listeners += 1
        if feed.task is None or feed.task.done():
            if not feed.ended:
                feed.task = asyncio.create_task(self._poll(job_id, feed))
        try:
            sent = after
            while True:
                for seq, kind, data in feed.events:
                    if seq > sent:
                        sent = seq
                        yield f"id: {seq}\nevent: {kind}\ndata: {json.dumps(data)}\n\n"
                        if kind in END_EVENTS:
                            return
                if feed.ended and not any(seq > sent for seq, *_ in feed.events):
                    return
                if feed.task is None or feed.task.done():
                    feed.task = asyncio.create_task(self._poll(job_id, feed))
                changed = feed.changed
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), self.heartbeat_seconds)
                    continue
                yield ": heartbeat\n\n"
        finally:
            feed.listeners -= 1
            if feed.listeners == 0 and (feed.ended or len(self.feeds) > 256):
                self.feeds.pop(job_id, None)  # ended jobs are read from the store again if asked
