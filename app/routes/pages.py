"""The HTML pages: drawing a digit, the filter playground, the convolution-arithmetic stepper, training, your
data, a class, and the API's docs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.deps import owning_workspace
from app.errors import store_errors

TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parents[2] / "templates")
# The app's own assets are linked root-relative: never built from the Host header, so a hostile Host
# cannot point a page at another site, and behind an HTTPS proxy they load over HTTPS.
TEMPLATES.env.globals["static"] = lambda path: f"/static/{path}"


def visit(request: Request) -> None:
    """A first visit to a page gets its workspace (the cookie), so what the visitor makes is theirs. While
    the store cannot be reached the page is served all the same (the shipped models need no store)."""
    if request.method == "GET":
        try:
            owning_workspace(request)
        except store_errors():
            pass


# /docs is a page too but makes nothing: it stays out of the workspace dependency
router = APIRouter(include_in_schema=False)
pages = APIRouter(include_in_schema=False, dependencies=[Depends(visit)])


def render(request: Request, template: str, **context) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, template, context)


# each page's path and its template (templates/{name}.html); the nav marks ``page`` as the current one
PAGES = {
    "/": "digits",
    "/playground": "playground",
    "/arithmetic": "arithmetic",
    "/train": "train",
    "/data": "data",
    "/class": "class",
}


def _page(name: str) -> Callable[[Request], HTMLResponse]:
    def show(request: Request) -> HTMLResponse:
        return render(request, f"{name}.html", page=name)

    return show


for path, name in PAGES.items():
    pages.add_api_route(path, _page(name), methods=["GET", "HEAD"], response_class=HTMLResponse, name=f"{name}_page")


@router.api_route("/docs", methods=["GET", "HEAD"], response_class=HTMLResponse)
def api_docs(request: Request) -> HTMLResponse:
    """Swagger UI from the app's own static files: no CDN, no inline script (the CSP forbids both)."""
    return render(request, "docs.html", openapi_url=request.app.openapi_url)


router.include_router(pages)


def not_found_page(request: Request) -> HTMLResponse:
    """The page for a link that leads nowhere, with the site's navigation."""
    return TEMPLATES.TemplateResponse(request, "404.html", {"page": "404", "path": request.url.path}, status_code=404)
