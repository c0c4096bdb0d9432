"""The lecturer's live view of a class: one reading of the store feeds every lecturer's stream, and a
stream hears only readings begun after it opened, so a reading already under way when a lecturer joined
(or set a new round) can neither send that lecturer away nor show it the room as it was."""

from __future__ import annotations

import asyncio
import threading

from app.config import Settings
from app.jobs.events import ClassHub, EventHub, Lease
from app.jobs.store import open_store
from tests.conftest import run_async


class ScriptedReading:
    """Stands in for the store's reading of a room: each read waits for the test to hand it its answer."""

    def __init__(self) -> None:
        self.answers: list[tuple[dict, set[str]]] = []
        self.ready = threading.Condition()
        self.begun = 0

    def read(self, store) -> tuple[dict, set[str]]:
        with self.ready:
            self.begun += 1
            self.ready.notify_all()
            assert self.ready.wait_for(lambda: self.answers, timeout=10), "the test gave no answer"
            return self.answers.pop(0)

    def answer(self, state: dict, lecturers: set[str]) -> None:
        with self.ready:
            self.answers.append((state, lecturers))
            self.ready.notify_all()

    async def begun_at_least(self, count: int) -> None:
        while self.begun < count:
            await asyncio.sleep(0.01)


def test_a_lecturer_who_joins_while_a_reading_is_under_way_is_not_sent_away_and_sees_the_room_as_it_is(
    tmp_path, monkeypatch
):
    settings = Settings(data_dir=tmp_path, class_poll_seconds=30)
    store = open_store(settings.store)
    hub = ClassHub(store, settings, EventHub(store, settings))
    reading = ScriptedReading()
    monkeypatch.setattr("app.jobs.events.RoomReading", lambda class_id: reading)

    async def scenario() -> list[str]:
        projector = hub.follow("k1", {"you": "projector"}, "w-projector", Lease("p", ()))
        first = asyncio.ensure_future(anext(projector))
        await reading.begun_at_least(1)  # the projector's first reading is under way ...
        tablet = hub.follow("k1", {"you": "tablet"}, "w-tablet", Lease("t", ()))
        heard = asyncio.ensure_future(anext(tablet))
        await asyncio.sleep(0.05)
        # ... and answers from before the tablet joined: round 1, the projector the only lecturer
        reading.answer({"challenge": {"round": 1}}, {"w-projector"})
        await first
        await reading.begun_at_least(2)  # the tablet's arrival asked for a reading of its own at once
        assert not heard.done(), "the tablet heard a reading begun before it joined"
        reading.answer({"challenge": {"round": 2}}, {"w-projector", "w-tablet"})
        return [await heard, await projector.aclose() or "closed", await tablet.aclose() or "closed"]

    events = run_async(scenario())
    assert events[0].startswith("event: class") and '"round": 2' in events[0], events[0]
