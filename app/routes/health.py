"""Liveness for load balancers and container health checks: cheap, no model work."""

from __future__ import annotations

from fastapi import APIRouter

from app.deps import ModelDep
from app.schemas import Health

router = APIRouter(tags=["health"])


@router.api_route("/healthz", methods=["GET", "HEAD"], response_model=Health, summary="Is the service up?")
def healthz(model: ModelDep) -> dict:
    meta = model.meta
    return {
        "status": "ok",
        "model": {
            "version": meta.get("version"),
            "val_accuracy": meta.get("val_accuracy"),
            "parameters": model.parameter_count,
        },
    }
