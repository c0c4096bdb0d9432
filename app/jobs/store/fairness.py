"""The training queue's fair order and its caps: pure rules, read by the store's contract."""

from __future__ import annotations

from dataclasses import dataclass

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


def check_seconds(active: list[dict], job: dict, caps: QueueCaps) -> None:
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
