"""Logs in one format for the app, uvicorn and Huey: JSON lines on stderr, an error's traceback in
``exc_info``; and the access log: one line per request, with its duration."""

from __future__ import annotations

import json
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
