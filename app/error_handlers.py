"""How every error is answered: a domain error (:mod:`app.errors`) with its status and its words, the
engine's refusals as 422, an unreachable store as 503 with Retry-After, a bad request body field by
field, and a bad link as a page rather than JSON."""

from __future__ import annotations

import reprlib
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import ApiError, ServiceError, store_errors
from app.limits import limits
from app.logs import store_outage
from app.routes.pages import not_found_page
from engine.budget import OutOfTime
from engine.errors import EngineError, SpecError


def _short(value: Any) -> str:
    # reprlib stops after a few items, so a huge list costs nothing to describe
    return reprlib.repr(value)


def describe_validation_error(error: dict[str, Any]) -> str:
    """``body.stride: Input should be greater than or equal to 1 (got 0)``."""
    where = ".".join(str(part) for part in error.get("loc", ()))
    message = error.get("msg", "invalid value").removeprefix("Value error, ")
    if "input" in error and error.get("type") not in ("missing", "json_invalid"):
        message += f" (got {_short(error['input'])})"
    return f"{where}: {message}" if where else message


BODY_UNREADABLE = "There was an error parsing the body"  # FastAPI's words when json.loads itself fails


ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "description": "What was wrong, in words; for a bad request body, each field's problem in `errors`",
    "properties": {
        "detail": {"type": "string", "title": "Detail"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"loc": {"type": "array", "items": {}}, "msg": {"type": "string"}},
            },
        },
        "layer": {"type": ["object", "null"], "description": "a network design's layer at fault"},
    },
    "required": ["detail"],
}


def document_errors(app: FastAPI) -> None:
    """Every 422 in the OpenAPI schema is this app's error body, not FastAPI's default list."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components["HTTPValidationError"] = ERROR_SCHEMA
            components.pop("ValidationError", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_error_handlers(app: FastAPI) -> None:
    document_errors(app)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400 and exc.detail == BODY_UNREADABLE:
            # json.loads gave up before any field was read: Python refuses integers of more than 4300
            # digits and lists nested about a thousand deep
            message = (
                "the body is not JSON this server can read: numbers may have at most 4300 digits (and values "
                f"here stay within ±{limits().max_grid_value:g}), and lists may nest at most a few levels deep"
            )
            return JSONResponse({"detail": message}, status_code=422)
        if exc.status_code == 404 and not request.url.path.startswith("/api/") and request.method in ("GET", "HEAD"):
            # a person who followed a bad link gets a page; the API keeps answering in JSON
            return not_found_page(request)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
        return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=headers)

    @app.exception_handler(OutOfTime)
    async def out_of_time(_: Request, exc: OutOfTime) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "1"})

    async def store_unreachable(request: Request, exc: Exception) -> JSONResponse:
        store_outage.failed(exc, f"{request.method} {request.url.path}")
        message = "the server's store did not answer; try again in a few seconds (nothing was lost)"
        return JSONResponse({"detail": message}, status_code=503, headers={"Retry-After": "5"})

    for error in store_errors():
        app.add_exception_handler(error, store_unreachable)

    @app.exception_handler(EngineError)
    async def engine_error(_: Request, exc: EngineError) -> JSONResponse:
        # the engine refused an argument: its message already says what and why
        body: dict[str, Any] = {"detail": str(exc)}
        if isinstance(exc, SpecError) and exc.index is not None:
            body["layer"] = exc.layer()
        return JSONResponse(body, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()[:20]  # a ragged 1000x1000 list must not produce a megabyte of errors
        messages = [describe_validation_error(e) for e in errors]
        return JSONResponse(
            {
                "detail": "; ".join(messages),
                "errors": [{"loc": list(e.get("loc", ())), "msg": m} for e, m in zip(errors, messages)],
            },
            status_code=422,
        )
