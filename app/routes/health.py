"""Liveness for load balancers and container health checks: cheap, no model work, never queued
behind the compute slots (it runs on the event loop itself)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Is the service up?")
@router.head("/healthz", include_in_schema=False)  # load balancers often probe with HEAD
async def healthz(request: Request) -> dict:
    model = request.app.state.model
    meta = model.meta
    return {
        "status": "ok",
        "model": {
            "version": meta.get("version"),
            "val_accuracy": meta.get("val_accuracy"),
            "parameters": model.parameter_count,
        },
    }
