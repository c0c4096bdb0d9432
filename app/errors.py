"""Errors a person can act on: what was wrong, what is allowed, what was received. The types and their
statuses only (this module imports nothing of the app's: everything may raise them); the handlers that
answer them are :mod:`app.error_handlers`."""

from __future__ import annotations

import sqlite3
from typing import Any

from pydantic import BaseModel, Field


def store_errors() -> tuple[type[Exception], ...]:
    """What a store that cannot be reached raises: Redis's connection and lock errors, SQLite's lock."""
    import redis

    return (redis.ConnectionError, redis.TimeoutError, redis.exceptions.LockError, sqlite3.OperationalError)


class ApiError(Exception):
    """An error answered with ``status`` and ``{"detail": message}``."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


class ServiceError(Exception):
    """A service's refusal in words (not an HTTP detail): each kind is answered with its ``status``."""

    status = 400

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class NotFound(ServiceError):
    """Nothing by that name that the caller may see (never "forbidden": that would say it exists)."""

    status = 404


class Forbidden(ServiceError):
    """The caller may see the thing but not do this to it (a student ending a class, a wrong lecturer token)."""

    status = 403


class Conflict(ServiceError):
    """The thing is not in a state that allows this (a model still training, a job already ended)."""

    status = 409


class Refused(ServiceError):
    """A value the service cannot take, with the bound it passed."""

    status = 422


class TooLarge(ServiceError):
    """A body, a file or a picture past its size bound; the message names the size and the bound."""

    status = 413


class Unsupported(ServiceError):
    """An upload of a kind this server does not read (a picture that is not PNG, JPEG or WebP)."""

    status = 415


class OverQuota(ServiceError):
    """A workspace's or an address's cap is reached; the message names the count and the cap."""

    status = 429


class StoreFull(ServiceError):
    """What one address's workspaces keep, or the whole store, is at its cap; the message names the figures."""

    status = 507


ERROR_WORDS = {
    400: "the form could not be read (a broken multipart body)",
    401: "the bearer token names no workspace here",
    403: "you are in the class, but only its lecturers may do this",
    404: "no such thing that you may see (another workspace's models are never shown)",
    409: "not in a state that allows this (still training, already ended)",
    413: "the request body is too large",
    415: "the upload is not a picture this server reads (PNG, JPEG or WebP)",
    422: "a value out of bounds, or a request that would take too much memory or time; the message says which",
    429: "a cap of your workspace or address is reached; see Retry-After",
    503: "the server or its store is busy or unreachable; see Retry-After",
    507: "what your address's workspaces keep, or the whole server's store, is at its cap; the message says which",
}


def error_responses(*statuses: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route answers, each with the error body's schema:
    ``error_responses(404, 429)``, or with words of its own: ``error_responses(s404="no such job")``."""
    entries: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entries[status] = {"model": ErrorBody, "description": ERROR_WORDS[status]}
    for key, words in described.items():
        entries[int(key.removeprefix("s"))] = {"model": ErrorBody, "description": words}
    return entries


class ErrorBody(BaseModel):
    """What every error answers: what was wrong, in words."""

    detail: str = Field(examples=["no model 'm123' in your workspace; GET /api/models lists yours"])
