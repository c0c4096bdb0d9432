"""Streams a job's events to any number of clients for the price of one: per process, one poller
per followed job reads new events from the store and wakes every client waiting on that job.

A client that connects late (or reconnects with ``Last-Event-ID``) first gets what it missed from
the events kept here; a client that disconnects stops nothing but its own stream. Each workspace and
each address may hold a bounded number of streams open, counted in the store for every process
(:class:`StreamLeases`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import anyio
from anyio import CapacityLimiter

from app.config import Settings
from app.errors import OverQuota, store_errors
from app.jobs.stale import reap_stale
from app.jobs.store import JobStore
from app.services.classes import RoomReading

END_EVENTS = ("done", "failed", "cancelled")


@dataclass
class _Feed:
    events: list[tuple[int, str, dict]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    listeners: int = 0
    task: asyncio.Task | None = None
    ended: bool = False


@dataclass(frozen=True)
class Lease:
    """One open stream's place under its address's and its workspace's caps (store tallies)."""

    entry: str
    keys: tuple[str, ...]


class StreamLeases:
    """Open event streams, counted in the store so that every process and replica enforces one cap per
    workspace and per address. Each stream holds a lease the process renews while it is open; a process
    that dies leaves leases that lapse after ``TTL`` seconds."""

    TTL = 60.0

    def __init__(self, store: JobStore, settings: Settings) -> None:
        self.store = store
        self.per_workspace, self.per_address = settings.max_streams_per_workspace, settings.max_streams_per_address
        self.held: set[Lease] = set()
        self._renewing: asyncio.Task | None = None

    def admit(self, workspace: str | None, address: str) -> Lease:
        """A lease for a new stream, or 429 naming the count and the cap it would pass (a store call: run
        it on a thread)."""
        caps = [(f"streams:a:{address}", self.per_address)]
        if workspace:
            caps.append((f"streams:w:{workspace}", self.per_workspace))
        lease = Lease(uuid.uuid4().hex, tuple(key for key, _ in caps))
        full = self.store.tally_add(lease.entry, caps, self.TTL)
        if full is not None and full[0].startswith("streams:w:"):
            raise OverQuota(
                f"your workspace has {full[1]} event streams open, the most one may have ({self.per_workspace}); "
                "close a tab that follows a job or a class",
                retry_after=5,
            )
        if full is not None:
            raise OverQuota(
                f"{full[1]} event streams are open from your address, the most one address may have "
                f"({self.per_address}); try again in a moment",
                retry_after=5,
            )
        self.held.add(lease)
        return lease

    def release(self, lease: Lease) -> None:
        """Gives the lease back without waiting (the stream may be closing because its task was cancelled):
        a store that does not answer now lets it lapse."""
        self.held.discard(lease)
        try:
            asyncio.get_running_loop().run_in_executor(None, self._forget, lease)
        except RuntimeError:  # no loop any more (the stream is being collected at shutdown): at once
            self._forget(lease)

    def _forget(self, lease: Lease) -> None:
        with contextlib.suppress(*store_errors()):
            self.store.tally_remove(lease.keys, lease.entry)

    def keep_renewed(self, limiter: CapacityLimiter) -> None:
        """Starts the process's renewal task (once): every held lease is renewed a third of ``TTL`` apart."""
        if self._renewing is None or self._renewing.done():
            self._renewing = asyncio.create_task(self._renew(limiter))

    async def _renew(self, limiter: CapacityLimiter) -> None:
        while self.held:
            await asyncio.sleep(self.TTL / 3)
            for lease in list(self.held):
                with contextlib.suppress(*store_errors()):
                    await anyio.to_thread.run_sync(
                        self.store.tally_renew, lease.entry, lease.keys, self.TTL, limiter=limiter
                    )


class EventHub:
    """One per web process (on ``app.state``); store reads run on a few threads of their own so
    they never wait behind the compute slots."""

    def __init__(self, store: JobStore, settings: Settings) -> None:
        self.store = store
        self.stale_seconds = settings.job_stale_seconds
        self.poll_seconds, self.heartbeat_seconds = settings.event_poll_seconds, settings.stream_heartbeat_seconds
        self.feeds: dict[str, _Feed] = {}
        self.limiter = CapacityLimiter(4)
        self.leases = StreamLeases(store, settings)

    async def admit(self, workspace: str | None, address: str) -> Lease:
        """Counts a new stream against its workspace's and address's caps, in the store (429 past either);
        the lease is given back when the stream ends (:meth:`follow` does it)."""
        lease = await anyio.to_thread.run_sync(self.leases.admit, workspace, address, limiter=self.limiter)
        self.leases.keep_renewed(self.limiter)
        return lease

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

    async def follow(self, job_id: str, after: int, lease: Lease) -> AsyncIterator[str]:
        """Server-sent events after id ``after``, until the job ends; heartbeat comments meanwhile. The
        stream's ``lease`` (:meth:`admit`) is given back when it ends, however it ends."""
        try:
            async for chunk in self._follow(job_id, after):
                yield chunk
        finally:
            self.leases.release(lease)

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


@dataclass
class _ClassFeed:
    reading: RoomReading
    text: str | None = None  # the room's state as JSON
    lecturers: set[str] = field(default_factory=set)  # the workspaces that may follow it
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    listeners: int = 0
    task: asyncio.Task | None = None
    ended: bool = False
    readings_started: int = 0  # readings of the store begun so far
    read_by: int = 0  # the number of the reading ``lecturers`` (and ``text``) come from
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # read again now (a follower arrived)


class ClassHub:
    """A class's live view for its lecturers: per process, one reading of the class a poll feeds every
    lecturer's stream of it, however many follow it (a projector, a laptop, a tablet each)."""

    def __init__(self, store: JobStore, settings: Settings, events: EventHub) -> None:
        self.store = store
        self.poll_seconds, self.heartbeat_seconds = settings.class_poll_seconds, settings.stream_heartbeat_seconds
        self.events = events  # its store threads and stream leases are shared
        self.feeds: dict[str, _ClassFeed] = {}

    async def _poll(self, feed: _ClassFeed) -> None:
        while feed.listeners > 0:
            feed.wake.clear()
            feed.readings_started += 1
            number = feed.readings_started
            state = await anyio.to_thread.run_sync(feed.reading.read, self.store, limiter=self.events.limiter)
            text = None if state is None else json.dumps(state[0])
            feed.lecturers, feed.read_by, feed.ended = (state[1] if state else set()), number, state is None
            if text != feed.text:
                feed.text = text  # a new object: followers send what is not the object they sent last
            feed.changed.set()  # every reading: a follower may be waiting for one begun after it arrived
            feed.changed = asyncio.Event()
            if feed.ended:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(feed.wake.wait(), self.poll_seconds)

    async def follow(self, class_id: str, own: dict, workspace_id: str, lease: Lease) -> AsyncIterator[str]:
        """``class`` events (the caller's ``own`` fields of the view with the room's shared state) whenever
        the room changes, ``ended`` when the class ends or the caller is no longer one of its lecturers."""
        feed = self.feeds.setdefault(class_id, _ClassFeed(RoomReading(class_id)))
        feed.listeners += 1
        # the caller hears only readings begun after it arrived: one begun before would not list it as a
        # lecturer (it may have joined a moment ago), nor show what it has just changed (a new round)
        since = feed.readings_started
        feed.wake.set()
        head = json.dumps(own)[:-1]  # the caller's fields, then the shared state's: one object, never re-parsed
        try:
            sent = None
            while True:
                if feed.task is None or feed.task.done():
                    if feed.ended:
                        yield "event: ended\ndata: {}\n\n"
                        return
                    feed.task = asyncio.create_task(self._poll(feed))
                if feed.read_by > since and workspace_id not in feed.lecturers:
                    yield "event: ended\ndata: {}\n\n"
                    return
                if feed.read_by > since and feed.text is not None and feed.text is not sent:
                    sent = feed.text
                    yield f"event: class\ndata: {head}, {sent[1:]}\n\n"
                changed = feed.changed
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), self.heartbeat_seconds)
                    continue
                yield ": heartbeat\n\n"
        finally:
            feed.listeners -= 1
            if feed.listeners == 0:
                self.feeds.pop(class_id, None)
            self.events.leases.release(lease)
