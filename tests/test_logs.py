"""One log format for the app, uvicorn and Huey: JSON lines, an error's traceback in exc_info."""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
import time

import redis

from app.jobs.worker import retry
from app.logs import JsonFormatter, StoreErrorsOnce, StoreOutage, configure_logging


def test_an_error_logged_with_its_exception_carries_the_traceback():
    try:
        raise ValueError("broken on purpose")
    except ValueError:
        record = logging.getLogger("convscope.errors").makeRecord(
            "convscope.errors", logging.ERROR, __file__, 1, "unhandled error on %s", ("GET /x",), sys.exc_info()
        )
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "error" and line["message"] == "unhandled error on GET /x"
    assert "Traceback" in line["exc_info"] and "ValueError: broken on purpose" in line["exc_info"]


def test_uvicorn_and_huey_write_the_same_json_and_huey_is_quiet_at_info():
    configure_logging("info")
    for name in ("convscope", "uvicorn", "uvicorn.error", "huey"):
        # (pytest adds capturing handlers of its own beside ours)
        assert any(isinstance(h.formatter, JsonFormatter) for h in logging.getLogger(name).handlers), name
    assert not logging.getLogger("huey").isEnabledFor(logging.INFO)
    assert logging.getLogger("huey").isEnabledFor(logging.WARNING)
    assert logging.getLogger("uvicorn.error").isEnabledFor(logging.INFO)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def outage_with_lines(monkeypatch) -> tuple[StoreOutage, list[logging.LogRecord], Clock]:
    clock, lines = Clock(), []
    monkeypatch.setattr("app.logs.time.monotonic", clock)
    logger = logging.getLogger("convscope.store.test")
    logger.propagate = False
    handler = logging.Handler()
    handler.emit = lines.append  # type: ignore[method-assign]
    logger.handlers = [handler]
    logger.setLevel("INFO")
    return StoreOutage(logger), lines, clock


def huey_record(error: Exception | None) -> logging.LogRecord:
    exc_info = None
    if error is not None:
        try:
            raise error
        except Exception:  # as huey's consumer catches what its poll raised
            exc_info = sys.exc_info()
    return logging.getLogger("huey").makeRecord("huey", logging.ERROR, __file__, 1, "error polling", (), exc_info)


def test_a_store_outage_is_one_line_with_its_traceback_then_one_per_retry_window_then_its_end(monkeypatch):
    outage, lines, clock = outage_with_lines(monkeypatch)
    quiet = StoreErrorsOnce(outage)
    for second in range(100):  # huey's consumer fails a poll every 0.1 s for ten seconds
        clock.now = 1000 + second / 10
        assert quiet.filter(huey_record(redis.ConnectionError("Connection refused"))) is False
    assert len(lines) == 1
    first = json.loads(JsonFormatter().format(lines[0]))
    assert "does not answer" in first["message"] and "ConnectionError: Connection refused" in first["message"]
    assert "Traceback" in first["exc_info"]
    clock.now = 1010.0
    outage.failed(redis.ConnectionError("Connection refused"), "the training worker")
    clock.now = 1025.0  # within the second window (20 s)
    outage.failed(redis.ConnectionError("Connection refused"), "the training worker")
    clock.now = 1030.0
    outage.failed(redis.ConnectionError("Connection refused"), "the training worker")
    assert [r.getMessage() for r in lines[1:]] == [
        "the store still does not answer after 10 s; retrying",
        "the store still does not answer after 30 s; retrying",
    ]
    assert all(r.exc_info is None for r in lines[1:])  # the traceback once
    clock.now = 1031.5
    outage.recovered()
    outage.recovered()
    assert lines[-1].getMessage() == "the store answers again after 31.5 s" and len(lines) == 4


def test_records_that_are_not_a_store_failing_pass_the_filter_unchanged(monkeypatch):
    outage, lines, _ = outage_with_lines(monkeypatch)
    quiet = StoreErrorsOnce(outage)
    assert quiet.filter(huey_record(None)) is True
    assert quiet.filter(huey_record(ValueError("a task's own error"))) is True
    assert lines == []


def test_the_end_of_an_outage_is_found_by_the_probe_while_nothing_else_calls_the_store(monkeypatch):
    outage, lines, _ = outage_with_lines(monkeypatch)
    outage.PROBE_SECONDS = 0.01
    answers = iter([redis.ConnectionError("down"), redis.ConnectionError("down"), None])

    def probe() -> None:
        error = next(answers, None)
        if error:
            raise error

    outage.probe = probe
    outage.failed(redis.ConnectionError("down"), "GET /api/models")
    deadline = time.monotonic() + 10
    while outage.down_since is not None:
        assert time.monotonic() < deadline, "the probe never found the store again"
        time.sleep(0.01)
    assert [r.getMessage().split(" (")[0] for r in lines][-1].startswith("the store answers again")


def test_a_worker_retrying_its_writes_through_an_outage_says_so_once(monkeypatch):
    outage, lines, _ = outage_with_lines(monkeypatch)
    monkeypatch.setattr("app.jobs.worker.store_outage", outage)
    monkeypatch.setattr("app.jobs.worker.time.sleep", lambda seconds: None)
    failures = iter([sqlite3.OperationalError("database is locked")] * 12)

    def write() -> str:
        error = next(failures, None)
        if error:
            raise error
        return "written"

    assert retry(write, seconds=60) == "written"
    assert [r.getMessage() for r in lines] == [
        "the store does not answer (OperationalError: database is locked, in the training worker); "
        "retrying until it does",
        "the store answers again after 0.0 s",
    ]
