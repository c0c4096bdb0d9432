"""Logs in one format for the app, uvicorn and Huey: JSON lines on stderr, an error's traceback in
``exc_info``; and the access log: one line per request, with its duration."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import store_errors

access_logger = logging.getLogger("convscope.access")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        entry.update(getattr(record, "fields", {}) or {"message": record.getMessage()})
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, separators=(",", ":"), default=str)


# Huey says "Executing housekeeping" every minute at INFO: its own lines show from WARNING unless debugging
QUIET_LOGGERS = ("huey",)
LOGGERS = ("convscope", "huey", "uvicorn", "uvicorn.error")


class StoreOutage:
    """A store that stops answering is said in a few lines, not one per failed call: one when it stops (with
    the first error's traceback), one at the end of each retry window while it stays down (10 s, then 20, 40
    and every 60), and one when it answers again (found by ``probe``, tried every second while it is down)."""

    FIRST_WINDOW, LONGEST_WINDOW, PROBE_SECONDS = 10.0, 60.0, 1.0

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.probe: Callable[[], None] | None = None
        self.down_since: float | None = None
        self.window = self.FIRST_WINDOW
        self.next_report = 0.0
        self._lock = threading.Lock()

    def failed(self, error: BaseException, where: str) -> None:
        """A call to the store failed with ``error``; says so if it is news (or a window has passed)."""
        now = time.monotonic()
        with self._lock:
            if self.down_since is None:
                self.down_since, self.window, self.next_report = now, self.FIRST_WINDOW, now + self.FIRST_WINDOW
                words = f"{type(error).__name__}: {error}"
                self.logger.warning(
                    "the store does not answer (%s, in %s); retrying until it does",
                    words,
                    where,
                    exc_info=error,
                )
                self._watch()
            elif now >= self.next_report:
                self.logger.warning("the store still does not answer after %.0f s; retrying", now - self.down_since)
                self.window = min(self.window * 2, self.LONGEST_WINDOW)
                self.next_report = now + self.window

    def recovered(self) -> None:
        """A call to the store succeeded: the end of an outage, if there was one."""
        if self.down_since is None:  # the usual case, without the lock
            return
        with self._lock:
            if self.down_since is None:
                return
            self.logger.warning("the store answers again after %.1f s", time.monotonic() - self.down_since)
            self.down_since = None

    def _watch(self) -> None:
        probe = self.probe
        if probe is None:
            return

        def watch() -> None:
            while self.down_since is not None:
                time.sleep(self.PROBE_SECONDS)
                try:
                    probe()
                except Exception:  # noqa: BLE001 - still down: every kind of failure means the same here
                    continue
                self.recovered()

        threading.Thread(target=watch, name="store-outage", daemon=True).start()


store_outage = StoreOutage(logging.getLogger("convscope.store"))


class StoreErrorsOnce(logging.Filter):
    """Huey's consumer logs every failed poll of an unanswering store with its traceback (dozens a second):
    those become ``outage``'s few lines; its other records pass as they are."""

    def __init__(self, outage: StoreOutage | None = None) -> None:
        super().__init__()
        self.outage = outage or store_outage

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is None or not isinstance(error, store_errors()):
            return True
        self.outage.failed(error, f"{record.name}: {record.getMessage()}")
        return False


def configure_logging(level: str) -> None:
    """Sends convscope's, uvicorn's and Huey's logs to stderr as JSON lines (once, however many apps are created)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        quiet = name in QUIET_LOGGERS and level.lower() != "debug"
        logger.setLevel("WARNING" if quiet else level.upper())
        if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
            handler = logging.StreamHandler()
            handler.setFormatter(JsonFormatter())
            logger.handlers = [handler]
            logger.propagate = False
        # on the handlers: a logger's own filters never see the records its children (huey.consumer) pass up
        for each in logger.handlers if name == "huey" else []:
            if not any(isinstance(f, StoreErrorsOnce) for f in each.filters):
                each.addFilter(StoreErrorsOnce())


def uvicorn_log_config(level: str) -> dict:
    """uvicorn's logging in the same JSON lines (its access log is off: the app writes its own)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json"}},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
        },
    }


class AccessLog:
    """Logs method, path, status, duration and response size of every HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not access_logger.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status, size = 500, 0

        async def measuring_send(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, measuring_send)
        finally:
            client = scope.get("client")
            access_logger.info(
                "request",
                extra={
                    "fields": {
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                        "bytes": size,
                        "client": client[0] if client else None,
                    }
                },
            )
