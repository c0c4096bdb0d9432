"""Liveness for load balancers and container health checks: cheap, no model work, never queued
behind the compute slots (it runs on the event loop itself). ``degraded`` says the store cannot be
reached (the pages and the shipped models still work; training and stored models wait for it)."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Request

from app.schemas import Health

router = APIRouter(tags=["health"])

STORE_PING_SECONDS = 2.0


async def store_error(request: Request) -> str | None:
    """None when the store answers a ping within two seconds, else what went wrong."""
    store = request.app.state.store
    try:
        with anyio.fail_after(STORE_PING_SECONDS):
            await anyio.to_thread.run_sync(store.ping, limiter=request.app.state.events.limiter)
    except TimeoutError:
        return f"the store did not answer within {STORE_PING_SECONDS:g} s"
    except Exception as error:  # any failure of the store's client is the store's state, in words
        return f"{type(error).__name__}: {error}"
    return None


@router.get("/healthz", response_model=Health, summary="Is the service up?")
@router.head("/healthz", include_in_schema=False)  # load balancers often probe with HEAD
async def healthz(request: Request) -> dict:
    model = request.app.state.model
    meta = model.meta
    problem = await store_error(request)
    return {
        "status": "degraded" if problem else "ok",
        "store": {"ok": problem is None, "error": problem},
        "model": {
            "version": meta.get("version"),
            "val_accuracy": meta.get("val_accuracy"),
            "parameters": model.parameter_count,
        },
    }
