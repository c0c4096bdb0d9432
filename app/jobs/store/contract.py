"""The store's contract, one part a concern: jobs and their events, blobs, documents (workspaces, share
links, documents, tallies, counters) and the fair queue. :class:`JobStore` is all four; each back end
(:mod:`.connections`) implements them in a module a concern, SQLite and Redis side by side."""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from app.jobs.store.fairness import TURNS_SECONDS, QueueCaps, QueueFull, check_seconds, fair_order


class Jobs(ABC):
    """Job records, their compare-and-set status, and each job's events."""

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
    def delete(self, job_id: str) -> None:
        """Removes a job with its events, its blobs (keys starting ``{job_id}/``) and its share links."""

    @abstractmethod
    def finished_before(self, timestamp: float) -> list[str]:
        """Ids of jobs that ended before ``timestamp`` (for the model time-to-live)."""

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

    @abstractmethod
    def started_since(self, timestamp: float) -> list[str]:
        """The workspace of every job started at or after ``timestamp`` (one entry per job)."""


class Blobs(ABC):
    """Bytes by key: trained models, snapshots, data sets' pictures."""

    @abstractmethod
    def put_blob(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def get_blob(self, key: str) -> bytes | None: ...

    @abstractmethod
    def delete_blob(self, key: str) -> None: ...


class Documents(ABC):
    """Workspaces, share links, documents by kind and owner, tallies that expire, counters."""

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


class FairQueue(Jobs):
    """Submitting and claiming jobs under the queue's lock, in the fair order."""

    @abstractmethod
    def queue_lock(self) -> contextlib.AbstractContextManager[None]:
        """Held while a submission is counted and written, or a job is claimed: one process at a time."""

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
            check_seconds(active, job, caps)
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


class JobStore(FairQueue, Jobs, Blobs, Documents):
    """Everything the app keeps; a back end implements every part."""

    @abstractmethod
    def ping(self) -> None:
        """Raises if the store cannot be reached."""

    def close(self) -> None:  # noqa: B027 - optional for back ends that hold connections
        """Releases connections."""
