"""Assembles the app: settings, the model loaded once, routers, static files, error handlers."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from app.config import Settings, get_settings
from app.error_handlers import install_error_handlers
from app.jobs.events import ClassHub, EventHub
from app.jobs.queue import TrainingQueue
from app.jobs.store import open_store
from app.lifecycle import leave_with_parent
from app.limits import RequestSettings
from app.logs import AccessLog, configure_logging, store_outage
from app.middleware import BodySizeLimit, ComputeSlots, HeaderLimits, SecurityHeaders, TimeBudget
from app.routes import (
    architectures,
    arithmetic,
    classes,
    datasets,
    explain,
    filters,
    health,
    interchange,
    learned,
    model,
    models,
    pages,
    predict,
    workspace,
)
from app.services.learned import LearnedCache
from app.services.registry import ModelRegistry
from app.services.workspaces import WorkspaceCookie, Workspaces
from engine import allocator

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"

DESCRIPTION = """
convscope's API: everything the pages do, for scripts and notebooks.

- **Predict** (`/api/predict`): a drawing, a picture or pixels through any model, with every layer's activations.
- **Why** (`/api/explain`, `/api/adversarial`): saliency, SmoothGrad, integrated gradients, Grad-CAM and
  occlusion; FGSM and PGD attacks within an L∞ ball.
- **What it learned** (`/api/models/{id}/units/…`, `/embedding`, `/neighbours`, `/edit`): unit cards, the class
  map, the nearest training pictures, and network surgery.
- **Filters** (`/api/filters`): classic kernels or your own over a photo, every padding mode, worked sums.
- **Arithmetic** (`/api/arithmetic`, `/api/convolve`, `/api/pool`): output sizes with the formula, parameter
  counts with groups, step-by-step convolution over planes and volumes, pooling, transposed convolution.
- **Training** (`/api/models`, `/api/architectures`): design a network, check its shapes, train it on a job
  queue and follow it live; list, share, copy, cancel and download models.
- **Workspaces** (`/api/workspace`): who owns what, without accounts; a bearer token for scripts.
- **Your data** (`/api/datasets`): data sets of your own, drawn, photographed, uploaded or zipped.
- **Classes** (`/api/classes`): a class code, the lecturer's live view, publishing, and a challenge in rounds.
- **ONNX and PyTorch** (`/api/models/import`, `/api/models/{id}/export`): models in and out.

Every size a caller controls is bounded; a request past a bound gets 413 or 422 with a message naming
the field, the bound and the value received.
"""


ROUTERS = (
    health,
    predict,
    explain,
    filters,
    arithmetic,
    model,
    workspace,
    interchange,
    models,
    learned,
    architectures,
    datasets,
    classes,
)


def lifespan_for(settings: Settings):
    """What each web process opens at start and closes at the end: the store and what is built on it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # what a serving process sets for itself, at its start (never when an app is only built)
        leave_with_parent()  # a web worker of `convscope serve` ends with it
        configure_logging(settings.log_level)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        allocator.return_freed_memory()  # a burst of large requests must not stay with the process
        store = open_store(settings.store)
        app.state.store = store
        store_outage.probe = store.ping  # an outage's end is found by pinging, not waited for
        app.state.workspaces = Workspaces(store, settings)
        app.state.registry = ModelRegistry(store, settings.weights_path, settings.model_cache_bytes)
        app.state.model = app.state.registry.shipped["lenet"]
        app.state.queue = TrainingQueue(settings, store)
        app.state.events = EventHub(store, settings)
        app.state.classes = ClassHub(store, settings, app.state.events)
        app.state.learned = LearnedCache(store, settings.learned_cache_bytes)
        # CPU-bound routes take one of `threads` compute slots (ComputeSlots); the thread pool itself has
        # room beyond them, so that static files and light reads never wait behind the computing
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads + 32
        yield
        store.close()

    return lifespan


def add_middleware(app: FastAPI, settings: Settings) -> None:
    """Innermost first: each one added wraps those before it."""
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "Authorization"],
            expose_headers=["X-Resized", "X-Output-Size", "X-Workspace-Token"],
        )
    if settings.trusted_hosts != ["*"]:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.trusted_hosts)
    app.add_middleware(
        ComputeSlots,
        slots=settings.threads,
        queue_seconds=settings.queue_seconds,
        budget_seconds=settings.request_timeout_seconds,
    )
    app.add_middleware(TimeBudget, seconds=settings.request_timeout_seconds)
    app.add_middleware(WorkspaceCookie, secure=settings.cookie_secure)
    app.add_middleware(RequestSettings, settings=settings)  # the request models' validators read these
    # a model file or a zip of pictures may be larger than any picture: their routes read at most that much
    # (and the multipart form's few fields) more
    larger = {
        "/api/models/import": max(settings.max_body_bytes, settings.import_max_bytes + 64 * 1024),
        "/api/datasets/import": max(settings.max_body_bytes, settings.dataset_zip_max_bytes + 64 * 1024),
    }
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, larger=larger)
    app.add_middleware(HeaderLimits, max_count=settings.max_header_count)
    app.add_middleware(SecurityHeaders)  # wraps everything, the 413 above included
    app.add_middleware(AccessLog)  # outermost: the duration covers the whole request


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for ``settings`` (else the environment's): building it changes nothing in the process
    (``uvicorn --factory app.main:create_app``; the serving process's own set-up is its lifespan's).
    Pictures are bounded by ``settings`` from their headers (:func:`app.imaging.check_shape`); Pillow's
    own decompression-bomb guard stays at its default behind that."""
    settings = settings or get_settings()
    # /docs is served by routes/pages.py from local files (no CDN, no inline script)
    app = FastAPI(
        title="convscope",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan_for(settings),
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    # a redirect to add a slash would be built from the Host header: answer 404 instead
    app.router.redirect_slashes = False
    install_error_handlers(app)
    for router in (*ROUTERS, pages):  # the pages last: their 404 page catches what nothing else took
        app.include_router(router.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    add_middleware(app, settings)
    return app
