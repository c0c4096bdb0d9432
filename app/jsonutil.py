"""Fast JSON responses for bodies the route has already shaped (nested lists and NumPy arrays)."""

from __future__ import annotations

import numpy as np
import orjson
from fastapi.responses import Response

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def _fallback(value):
    """What orjson's own NumPy support leaves out: views that are not C-contiguous, NumPy scalars."""
    if isinstance(value, np.ndarray):
        return np.ascontiguousarray(value)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def json_response(body: dict, status_code: int = 200) -> Response:
    """Serialises with orjson, NumPy arrays included.

    The body is already plain data, so FastAPI's response-model validation and jsonable_encoder
    (slow on the ~8,000 activation values of a prediction) would add nothing; orjson writes
    arrays directly, about ten times faster than ``json.dumps`` of nested lists.
    """
    content = orjson.dumps(body, option=_OPTIONS, default=_fallback)
    return Response(content, status_code=status_code, media_type="application/json")


def rounded(values: np.ndarray, digits: int) -> list:
    """Nested lists of ``values`` rounded to ``digits`` decimals, each a float that prints short: Python's
    ``round`` is exact where NumPy's can leave 0.30010000000000003, and float32 would print 0.0356 as
    0.035599999129772186."""
    flat = [round(v, digits) for v in np.asarray(values, dtype=np.float64).ravel().tolist()]
    return np.array(flat, dtype=object).reshape(np.shape(values)).tolist()
