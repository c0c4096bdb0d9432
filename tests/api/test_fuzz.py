"""Property-based fuzzing of the whole API from its own OpenAPI schema: no input may cause a 500,
and every answer matches the schema the docs promise (so the documented models cannot drift).

The examples per operation are bounded so CI stays fast; for a longer run:

    CONVSCOPE_FUZZ_EXAMPLES=500 .venv/bin/python -m pytest tests/api/test_fuzz.py
"""

import os
import tempfile

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from app.config import Settings
from app.main import create_app

app = create_app(Settings(log_level="warning", data_dir=tempfile.mkdtemp(prefix="convscope-fuzz-")))
_lifespan = TestClient(app)
_lifespan.__enter__()  # loads the model onto app.state, as a real start-up does

schema = schemathesis.openapi.from_asgi("/openapi.json", app)
EXAMPLES = int(os.environ.get("CONVSCOPE_FUZZ_EXAMPLES", "25"))


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_input_makes_the_server_fail(case):
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    case.call_and_validate(checks=checks)
