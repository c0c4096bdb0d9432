"""GET /api/model, its weights, /healthz, /docs, and the request-size limit."""

import numpy as np

from app.config import Settings
from app.main import create_app
from tests.api.conftest import ok
from tests.conftest import run_async


def test_healthz(client):
    body = ok(client.get("/healthz"))
    assert body["status"] == "ok"
    assert body["model"]["parameters"] == 63802 and body["model"]["val_accuracy"] >= 0.985


def test_model_layers_in_order(client):
    body = ok(client.get("/api/model"))
    assert [layer["name"] for layer in body["layers"]] == ["conv1", "pool1", "conv2", "pool2", "fc1", "fc2", "fc3"]
    conv1 = body["layers"][0]
    assert {k: conv1[k] for k in ("name", "kind", "output_shape", "parameters")} == {
        "name": "conv1",
        "kind": "conv",
        "output_shape": [6, 28, 28],
        "parameters": 156,
    }
    assert conv1["parameter_formula"] == "6 × (5·5·1 + 1) = 156" and conv1["receptive_field"] == [5, 5]
    assert body["total_parameters"] == 63802
    assert body["input_shape"] == [1, 32, 32]


def test_layer_weights(client):
    body = ok(client.get("/api/model/layers/conv1/weights"))
    assert body["weight_shape"] == [6, 1, 5, 5]
    assert np.array(body["weight"]).shape == (6, 1, 5, 5) and len(body["bias"]) == 6


def test_layer_weights_of_unknown_or_pooling_layers(client):
    response = client.get("/api/model/layers/conv9/weights")
    assert response.status_code == 404 and "conv1, pool1" in response.json()["detail"]
    response = client.get("/api/model/layers/pool1/weights")
    assert response.status_code == 404 and "no weights" in response.json()["detail"]


def test_openapi_documents_every_route_with_examples(client):
    spec = ok(client.get("/openapi.json"))
    for path in (
        "/api/predict",
        "/api/predict/file",
        "/api/filters",
        "/api/filters/apply",
        "/api/convolve",
        "/api/pool",
        "/api/arithmetic",
        "/api/model",
        "/api/model/layers/{name}/weights",
        "/healthz",
    ):
        assert path in spec["paths"], path
    schemas = spec["components"]["schemas"]
    assert schemas["ConvolveRequest"]["examples"][0]["kernel"] == [[1, 0, 1], [0, 1, 0], [1, 0, 1]]
    assert client.get("/docs").status_code == 200


def test_a_body_over_the_limit_is_refused_with_413():
    from fastapi.testclient import TestClient

    with TestClient(create_app(Settings(max_body_bytes=2048))) as small:
        response = small.post("/api/predict", json={"pixels": [[0] * 100] * 100})
        assert response.status_code == 413
        assert "at most 2048 bytes" in response.json()["detail"]

        def chunks():  # no Content-Length: counted while streaming
            for _ in range(10):
                yield b"x" * 1000

        response = small.post("/api/predict", content=chunks(), headers={"content-type": "application/json"})
        assert response.status_code == 413


def test_every_response_carries_the_security_headers(client):
    for response in (
        client.get("/"),
        client.get("/api/filters"),
        client.get("/api/model/layers/x/weights"),
        client.get("/static/css/main.css"),
    ):
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"


def test_pages_render(client):
    for path, marker in (
        ("/", "draw-canvas"),
        ("/playground", "output-image"),
        ("/arithmetic", "step-next"),
        ("/docs", "swagger-ui"),
    ):
        response = client.get(path)
        assert response.status_code == 200 and marker in response.text
        assert "<script>" not in response.text and "cdn" not in response.text.lower()


def test_each_request_is_logged_as_json_with_its_duration(client, caplog):
    import json
    import logging

    from app.logs import JsonFormatter

    with caplog.at_level(logging.INFO, logger="convscope.access"):
        logging.getLogger("convscope.access").addHandler(caplog.handler)
        try:
            client.get("/api/arithmetic?input_size=7&kernel_size=3")
        finally:
            logging.getLogger("convscope.access").removeHandler(caplog.handler)
    record = next(r for r in caplog.records if r.name == "convscope.access")
    entry = json.loads(JsonFormatter().format(record))
    assert entry["path"] == "/api/arithmetic" and entry["status"] == 200 and entry["duration_ms"] >= 0


def test_a_request_over_its_time_budget_gets_503():
    import io
    import json as jsonlib

    from fastapi.testclient import TestClient
    from PIL import Image

    big = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((900, 900, 3)) * 255).astype(np.uint8)).save(big, "PNG")
    with TestClient(create_app(Settings(request_timeout_seconds=0.05))) as slow:
        response = slow.post(
            "/api/filters/apply",
            files={"file": ("big.png", big.getvalue(), "image/png")},
            data={"kernel": jsonlib.dumps(np.ones((15, 15)).tolist()), "dilation": "8"},
        )
        assert response.status_code == 503
        assert "budget" in response.json()["detail"]
        assert slow.get("/healthz").status_code == 200  # the server carries on


def test_cors_is_off_by_default_and_on_for_configured_origins(client):
    from fastapi.testclient import TestClient

    assert (
        "access-control-allow-origin" not in client.get("/api/filters", headers={"Origin": "https://a.example"}).headers
    )
    with TestClient(create_app(Settings(cors_origins=["https://class.example"]))) as shared:
        response = shared.get("/api/filters", headers={"Origin": "https://class.example"})
        assert response.headers["access-control-allow-origin"] == "https://class.example"


def test_a_100_mb_upload_is_refused_before_its_body_is_read():

    app = create_app(Settings())
    chunks_read = 0
    sent = []

    async def receive():
        nonlocal chunks_read
        chunks_read += 1
        return {"type": "http.request", "body": b"x" * 65536, "more_body": True}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/predict/file",
        "raw_path": b"/api/predict/file",
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 1),
        "http_version": "1.1",
        "headers": [
            (b"content-length", str(100 * 1024 * 1024).encode()),
            (b"content-type", b"multipart/form-data; boundary=x"),
        ],
    }
    run_async(app(scope, receive, send))
    assert sent[0]["status"] == 413
    assert chunks_read == 0  # refused from the declared length alone: nothing was buffered


def test_pages_and_health_answer_head_requests(client):
    for path in ("/", "/playground", "/arithmetic", "/docs", "/healthz"):
        assert client.head(path).status_code == 200, path


def test_a_page_that_does_not_exist_is_a_real_404_page_and_the_api_keeps_json(client):
    page = client.get("/no-such-page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "There is no page here" in page.text and 'href="/train"' in page.text
    assert "content-security-policy" in page.headers
    api = client.get("/api/no-such-route")
    assert api.status_code == 404 and api.headers["content-type"] == "application/json"


def test_every_page_starts_with_a_skip_link_to_its_content(client):
    for path in ("/", "/playground", "/arithmetic", "/train"):
        html = client.get(path).text
        assert html.index('class="skip-link" href="#main"') < html.index("<header")
        assert '<main id="main">' in html


def test_the_api_description_names_every_feature_and_each_tag_is_documented(client):
    spec = ok(client.get("/openapi.json"))
    words = spec["info"]["description"]
    for route in ("/api/predict", "/api/explain", "/api/adversarial", "/embedding", "/api/filters", "/api/arithmetic"):
        assert route in words, route
    for route in ("/api/convolve", "/api/models", "/api/workspace", "/api/datasets", "/api/classes", "/export"):
        assert route in words, route
    prefixes = {path.split("/")[2] for path in spec["paths"] if path.startswith("/api/")}
    assert all(f"/api/{prefix}" in words for prefix in prefixes), sorted(prefixes)
