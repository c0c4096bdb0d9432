"""ASGI middleware: security headers on every response, and a request-body limit enforced while the body streams in."""

from __future__ import annotations

import asyncio
import json
import logging
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine import allocator, budget

log = logging.getLogger("convscope.errors")


class BodySizeLimit:
    """Refuses bodies over ``max_bytes`` with 413, before they are buffered.

    A declared ``Content-Length`` over the limit is refused at once; a chunked body is
    counted as it arrives and cut off as soon as it passes the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, larger: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = larger or {}  # paths that take more (a model file to import)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope["path"], self.max_bytes)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, int(declared), limit)
            return

        received = 0
        refused = False
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit and not response_started:
                    # answer 413 now and tell the app the client is gone; whatever
                    # the app answers to that is dropped by guarded_send
                    refused = True
                    await self._refuse(send, received, limit)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if refused:
                return
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counting_receive, guarded_send)

    async def _refuse(self, send: Send, size: int, limit: int) -> None:
        hint = "a smaller model file" if limit != self.max_bytes else "downscale the image or send fewer values"
        message = f"request body is {size} bytes or more; at most {limit} bytes are accepted ({hint})"
        await send_json(send, 413, message, [(b"connection", b"close")])


async def send_json(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]]) -> None:
    """Answers ``{"detail": ...}`` straight from middleware, before (or instead of) the app."""
    body = json.dumps({"detail": detail}).encode()
    start_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": start_headers + headers})
    await send({"type": "http.response.body", "body": body})


CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",  # no inline scripts, no third-party origins
        "style-src 'self'",
        "img-src 'self' data: blob:",  # canvases and filtered pictures are shown through data: and blob: URLs
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds the security headers to every HTTP response, errors included; a bug that escapes the app
    becomes a clean 500 with a JSON body that says nothing of the internals (and the same headers)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise  # half an answer is out: the connection has to go
            message = "the server failed on this request; it has been logged. Try again, or report it"
            await send_json(send, 500, message, SECURITY_HEADERS)


class TimeBudget:
    """Answers 503 when a request has not started its answer within ``seconds``.

    The app runs in a task of its own and is not cancelled (a thread doing NumPy work cannot be
    interrupted); the client gets its 503 on time and whatever the app sends later is dropped, and the
    work stops at its next check (:func:`engine.budget.check_time`) without storing anything. Work
    that has begun storing (:func:`engine.budget.commit`) is waited for instead. An
    answer that has started is never cut: it is sent whole (a streamed one, such as a job's events,
    as long as it lasts).
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = timed_out = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if timed_out:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        gate = budget.open_gate()  # before the task is made: it copies this context, the gate with it
        task = asyncio.ensure_future(self.app(scope, receive, guarded_send))
        done, _ = await asyncio.wait({task}, timeout=self.seconds)
        if done or started or not gate.expire():
            # finished, answering already, or storing what it computed (its answer is on its way): let it
            # finish (re-raises what the app raised)
            await task
            return
        timed_out = True
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # keep its error out of the logs
        message = f"the request took longer than its {self.seconds:g} s budget; try a smaller picture or kernel"
        await send_json(send, 503, message, [(b"retry-after", b"1")])


# GETs that compute with a model (the learned views) take a compute slot like the POSTs
HEAVY_GET = re.compile(r"^/api/models/[^/]+/(units/|embedding$)")
# POSTs that only write a record (a class pressing Train at once must never be told the server is busy; a
# wrong class code's delay must never hold a compute slot)
LIGHT_POST = re.compile(
    r"^/api/(workspace|models|models/[^/]+/(cancel|share|copy)|classes|classes/join|classes/[^/]+/lecturer-token)$"
)


def is_compute(scope: Scope) -> bool:
    """Does this request compute (a POST under /api/ that is not a bookkeeping one, or a learned view)?"""
    path = scope["path"]
    if scope["method"] == "POST":
        return path.startswith("/api/") and LIGHT_POST.match(path) is None
    return scope["method"] == "GET" and HEAVY_GET.match(path) is not None


class ComputeSlots:
    """At most ``slots`` CPU-heavy requests (:func:`is_compute`) computed at once per worker; a request
    that cannot get a slot within ``queue_seconds`` is refused at once with 503 and ``Retry-After``
    rather than left to wait past its budget, and one still computing past ``budget_seconds`` (already
    answered 503 by :class:`TimeBudget`) gives its slot up, and the engine stops it at its next pass
    (:mod:`engine.budget`). Everything else (health checks, pages, static files, job event streams) never
    waits here, and has threads of its own."""

    TRIM_AFTER_SECONDS = 0.5  # quiet this long after the last compute request ends: its memory goes back

    def __init__(self, app: ASGIApp, slots: int, queue_seconds: float, budget_seconds: float) -> None:
        self.app = app
        self.slots = asyncio.Semaphore(slots)
        self.queue_seconds = queue_seconds
        self.budget_seconds = budget_seconds
        self.computing = 0  # requests whose work has not ended (past their budget included)
        self.trim_pending = False

    def _ended(self) -> None:
        """One request's work ended; the last one's schedules giving its memory back (once, if all stay quiet)."""
        self.computing -= 1
        if self.computing or self.trim_pending:
            return
        self.trim_pending = True
        loop = asyncio.get_running_loop()

        def trim_if_quiet() -> None:
            self.trim_pending = False
            if not self.computing:
                loop.run_in_executor(None, allocator.trim)

        loop.call_later(self.TRIM_AFTER_SECONDS, trim_if_quiet)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_compute(scope):
            await self.app(scope, receive, send)
            return
        try:
            await asyncio.wait_for(self.slots.acquire(), self.queue_seconds)
        except TimeoutError:
            message = (
                f"the server is busy: every compute slot stayed taken for {self.queue_seconds:g} s; "
                "try again in a moment"
            )
            await send_json(send, 503, message, [(b"retry-after", b"1")])
            return
        # the task copies this context: the engine, in whatever thread computes, sees the deadline
        budget.start(self.budget_seconds)
        task = asyncio.ensure_future(self.app(scope, receive, send))
        self.computing += 1
        task.add_done_callback(lambda _: self._ended())
        released = False
        try:
            done, _ = await asyncio.wait({task}, timeout=self.budget_seconds)
            if not done:
                # past its budget the client has had its 503: the slot goes to the next request while
                # this one's thread (which cannot be interrupted) finishes its bounded work
                self.slots.release()
                released = True
            await task
        finally:
            if not released:
                self.slots.release()


class HeaderLimits:
    """Refuses requests with more than ``max_count`` headers with 431 (their total size is bounded by the
    HTTP parser, see ``convscope serve``)."""

    def __init__(self, app: ASGIApp, max_count: int) -> None:
        self.app = app
        self.max_count = max_count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and len(scope["headers"]) > self.max_count:
            message = f"{len(scope['headers'])} headers were sent; at most {self.max_count} are accepted"
            await send_json(send, 431, message, [(b"connection", b"close")])
            return
        await self.app(scope, receive, send)
