"""Every setting in one place, read from CONVSCOPE_* environment variables."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_workers() -> int:
    """One worker per core: the engine is CPU-bound NumPy, so more processes only contend."""
    return max(1, os.cpu_count() or 1)


class Settings(BaseSettings):
    """Deployment settings; each can be set as ``CONVSCOPE_<NAME>`` (e.g. ``CONVSCOPE_PORT=9000``)."""

    model_config = SettingsConfigDict(env_prefix="CONVSCOPE_", extra="ignore")

    host: str = Field("127.0.0.1", description="address uvicorn binds")
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(default_factory=default_workers, ge=1, le=64, description="uvicorn worker processes")
    threads: int = Field(4, ge=1, le=64, description="requests computed at once in each worker")
    log_level: str = Field("info", pattern="^(critical|error|warning|info|debug)$")
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="largest request body accepted (413 beyond)")
    max_image_pixels: int = Field(40_000_000, ge=1, description="decoded images larger than this are refused")
    max_filter_side: int = Field(1024, ge=16, description="filter inputs are downscaled to this longer side")
    request_timeout_seconds: float = Field(10.0, gt=0, description="time budget of one CPU-heavy request")
    cors_origins: list[str] = Field(default_factory=list, description="origins allowed to call the API from a browser")
    weights_path: str | None = Field(None, description="LeNet weights .npz (default: the shipped model)")


@lru_cache
def get_settings() -> Settings:
    return Settings()
