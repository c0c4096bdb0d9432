"""Fast JSON responses for bodies the route has already shaped (nested lists of floats)."""

from __future__ import annotations

import json

from fastapi.responses import Response


def json_response(body: dict, status_code: int = 200) -> Response:
    # The body is built from plain lists and numbers, so FastAPI's validation and
    # jsonable_encoder pass (slow on ~8,000 activation values) would add nothing.
    text = json.dumps(body, separators=(",", ":"), allow_nan=False)
    return Response(text, status_code=status_code, media_type="application/json")
