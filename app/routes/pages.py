"""The HTML pages: drawing a digit, the filter playground, the convolution-arithmetic stepper, training."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parents[2] / "templates")
# The app's own assets are linked root-relative: never built from the Host header, so a hostile Host
# cannot point a page at another site, and behind an HTTPS proxy they load over HTTPS.
TEMPLATES.env.globals["static"] = lambda path: f"/static/{path}"

router = APIRouter(include_in_schema=False)


def render(request: Request, template: str, **context) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, template, context)


@router.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
def digits_page(request: Request) -> HTMLResponse:
    return render(request, "digits.html", page="digits")


@router.api_route("/playground", methods=["GET", "HEAD"], response_class=HTMLResponse)
def playground_page(request: Request) -> HTMLResponse:
    return render(request, "playground.html", page="playground")


@router.api_route("/arithmetic", methods=["GET", "HEAD"], response_class=HTMLResponse)
def arithmetic_page(request: Request) -> HTMLResponse:
    return render(request, "arithmetic.html", page="arithmetic")


@router.api_route("/train", methods=["GET", "HEAD"], response_class=HTMLResponse)
def train_page(request: Request) -> HTMLResponse:
    return render(request, "train.html", page="train")


@router.api_route("/docs", methods=["GET", "HEAD"], response_class=HTMLResponse)
def api_docs(request: Request) -> HTMLResponse:
    """Swagger UI from the app's own static files: no CDN, no inline script (the CSP forbids both)."""
    return render(request, "docs.html", openapi_url=request.app.openapi_url)


def not_found_page(request: Request) -> HTMLResponse:
    """The page for a link that leads nowhere, with the site's navigation."""
    return TEMPLATES.TemplateResponse(request, "404.html", {"page": "404", "path": request.url.path}, status_code=404)
