"""The settings of the app serving the current request, for code that cannot be handed them: the
request models' validators run inside FastAPI before any dependency. ``create_app(Settings(...))``
installs :class:`RequestSettings`, so a test or a second app with other bounds gets its own."""

from __future__ import annotations

from contextvars import ContextVar

from starlette.types import ASGIApp, Receive, Scope, Send

from app.config import Settings, get_settings

_current: ContextVar[Settings | None] = ContextVar("convscope_settings", default=None)


def limits() -> Settings:
    """The serving app's settings (outside a request: the environment's)."""
    return _current.get() or get_settings()


class RequestSettings:
    """Makes ``settings`` what :func:`limits` returns while this app handles a request."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = _current.set(self.settings)
        try:
            await self.app(scope, receive, send)
        finally:
            _current.reset(token)
