"""Workspaces: who owns what, without accounts.

A browser's first visit gets a workspace: a random 128-bit token in an ``HttpOnly``, ``SameSite=Lax``
cookie (``Secure`` over HTTPS). Scripts send the same token as ``Authorization: Bearer <token>``. A
request that creates something (a training job, an edit, a copy) without either gets a new workspace,
whose token comes back with the answer (``Set-Cookie`` and ``X-Workspace-Token``), so a script can keep
using what it made. The store keeps only the token's SHA-256, never the token itself.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.errors import OverQuota
from app.jobs.store import JobStore

COOKIE = "convscope_workspace"
TOKEN_HEADER = "X-Workspace-Token"
COOKIE_DAYS = 365


@dataclass(frozen=True)
class Workspace:
    id: str
    name: str
    created: float


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _workspace(record: dict[str, Any]) -> Workspace:
    return Workspace(record["id"], record.get("name") or f"Workspace {record['id'][-4:]}", record["created"])


class AddressFlood:
    """How many workspaces each address created in the last hour, counted in the store (so every web process
    and replica shares one count): a guard against a script minting workspaces to escape the per-workspace
    limits (a class behind one address stays far below it)."""

    def __init__(self, store: JobStore, per_hour: int) -> None:
        self.store = store
        self.per_hour = per_hour

    def admit(self, address: str, workspace_id: str) -> None:
        over = self.store.tally_add(workspace_id, [(f"workspaces:{address}", self.per_hour)], ttl=3600)
        if over is not None:
            raise OverQuota(
                f"{over[1]} workspaces were created from your address in the last hour, the most one address "
                f"may create ({self.per_hour}); keep using the one you have (its cookie or bearer token)",
                retry_after=600,
            )


class Workspaces:
    """Creates workspaces and finds a request's one; one per web process (``app.state.workspaces``)."""

    def __init__(self, store: JobStore, settings: Settings) -> None:
        self.store = store
        self.flood = AddressFlood(store, settings.max_workspaces_per_address_per_hour)

    def create(self, address: str | None) -> tuple[Workspace, str]:
        """A fresh workspace and its token (the only time the token is seen)."""
        workspace_id = "w" + secrets.token_hex(8)
        if address:
            self.flood.admit(address, workspace_id)
        token = secrets.token_hex(16)  # 128 random bits
        record = {
            "id": workspace_id,
            "token": hash_token(token),
            "name": None,
            "created": time.time(),
            "address": address,
        }
        self.store.create_workspace(record)
        return _workspace(record), token

    def from_token(self, token: str) -> Workspace | None:
        record = self.store.workspace_by_token(hash_token(token))
        return None if record is None else _workspace(record)


def request_token(headers: Any, cookies: dict[str, str]) -> tuple[str | None, bool]:
    """The workspace token a request carries and whether it came as a bearer token (else a cookie)."""
    authorization = headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), True
    return cookies.get(COOKIE) or None, False


def cookie_header(token: str, secure: bool) -> bytes:
    parts = [f"{COOKIE}={token}", "Path=/", f"Max-Age={COOKIE_DAYS * 86_400}", "HttpOnly", "SameSite=Lax"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts).encode()


class WorkspaceCookie:
    """Sends a workspace made during a request back with its answer: the cookie for browsers and the
    token in ``X-Workspace-Token`` for scripts (which then send it as a bearer token)."""

    def __init__(self, app: ASGIApp, secure: bool | None) -> None:
        self.app = app
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_token(message: Message) -> None:
            token = scope.get("state", {}).get("new_workspace_token")
            if message["type"] == "http.response.start" and token:
                secure = self.secure if self.secure is not None else scope.get("scheme") == "https"
                message["headers"] = [
                    *message.get("headers", []),
                    (b"set-cookie", cookie_header(token, secure)),
                    (TOKEN_HEADER.lower().encode(), token.encode()),
                ]
            await send(message)

        await self.app(scope, receive, send_with_token)
