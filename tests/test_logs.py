"""One log format for the app, uvicorn and Huey: JSON lines, an error's traceback in exc_info."""

from __future__ import annotations

import json
import logging
import sys

from app.logs import JsonFormatter, configure_logging


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
