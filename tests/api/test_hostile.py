"""Replays of the faults an adversarial probe found, and variants: each gets a 4xx in words (or a
healthy answer), never a 500, a leaked internal or a worker tied up for seconds."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.config import Settings
from app.main import create_app
from tests.api.conftest import ok, png_bytes

SECURITY = ("content-security-policy", "x-content-type-options", "referrer-policy")


def raw_post(client, path: str, text: str):
    return client.post(path, content=text.encode(), headers={"content-type": "application/json"})


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (
            "/api/convolve",
            '{"input": [[%s, 1], [1, 1]], "kernel": [[1]]}' % ("9" * 400),
            "input values must lie within",
        ),
        ("/api/pool", '{"input": [[1, %s], [1, 1]]}' % ("9" * 400), "input values must lie within"),
        ("/api/convolve", '{"input": [[1, 1], [1, 1]], "kernel": [[%s]]}' % ("9" * 5000), "at most 4300 digits"),
        ("/api/convolve", '{"input": [[1]], "kernel": ' + "[" * 5000 + "1" + "]" * 5000 + "}", "nest"),
        ("/api/convolve", '{"input": [[1]], "kernel": ' + "[" * 50 + "1" + "]" * 50 + "}", "kernel must be a 2-D"),
        ("/api/convolve", '{"input": [["1", 1], [1, 1]], "kernel": [[1]]}', "plain numbers"),
        ("/api/convolve", '{"input": [[true, 1], [1, 1]], "kernel": [[1]]}', "plain numbers"),
        ("/api/convolve", '{"input": [[null, 1], [1, 1]], "kernel": [[1]]}', "plain numbers"),
        ("/api/convolve", '{"input": [[1, 1], [1]], "kernel": [[1]]}', "ragged"),
        ("/api/convolve", '{"input": [[1, 1], [1, 1]], "kernel": [[1]], "bias": 1e308}', "bias"),
        ("/api/convolve", '{"input": [[1e300, 1], [1, 1]], "kernel": [[1e300]]}', "within ±1e+09"),
        ("/api/pool", '{"input": [[-1.7e308, 1], [1, 1]]}', "within ±1e+09"),
        ("/api/predict", '{"pixels": [["a", 0], [0, 0]]}', "plain numbers"),
        ("/api/predict", '{"frame": [[%s]]}' % ("9" * 400), "frame values must lie"),
        (
            "/api/models",
            '{"architecture": {"input": [1, 28, 28], "classes": 10, "layers": %s}}' % ("[" * 3000 + "]" * 3000),
            "nest",
        ),
    ],
)
def test_hostile_numbers_and_nesting_are_422_naming_the_problem(client, path, body, message):
    response = raw_post(client, path, body)
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]
    assert all(h in response.headers for h in SECURITY)


def test_a_kernel_form_field_of_huge_or_deep_values_is_422(client, photo):
    for kernel, message in (
        ("[[%s]]" % ("9" * 400), "kernel values must lie within"),
        ("[[%s]]" % ("9" * 5000), "kernel"),
        ("[" * 3000 + "1" + "]" * 3000, "kernel"),
        ("[[1.7e308, 1], [1, 1]]", "within ±1e+09"),
    ):
        files = {"file": ("p.png", png_bytes(photo), "image/png")}
        response = client.post("/api/filters/apply", files=files, data={"kernel": kernel})
        assert response.status_code in (413, 422), response.text
        assert message in response.json()["detail"]


def long_strip_png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height), 255).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_tiny_file_of_an_extreme_shape_is_refused_before_it_is_decoded(client):
    strip = long_strip_png(4_000_000, 1)  # a few kilobytes that would decode to millions of pixels
    assert len(strip) < 50_000
    for path in ("/api/filters/apply", "/api/predict/file"):
        data = {"preset": "box_blur"} if "filters" in path else None
        response = client.post(path, files={"file": ("strip.png", strip, "image/png")}, data=data)
        assert response.status_code in (413, 422), response.text
        assert "4000000x1" in response.json()["detail"]
    tall = client.post("/api/predict/file", files={"file": ("t.png", long_strip_png(8, 10_000), "image/png")})
    assert tall.status_code == 422 and "at most 50 times the other" in tall.json()["detail"]


def test_error_messages_name_no_internals_and_state_the_real_bound(client):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    whole = png_bytes(noise)
    broken = whole[: len(whole) // 2]
    response = client.post("/api/predict/file", files={"file": ("b.png", broken, "image/png")})
    assert response.status_code == 422 and "0x" not in response.json()["detail"]
    assert "corrupt or truncated" in response.json()["detail"]
    settings = client.app.state.settings
    big = long_strip_png(8000, 6000)  # 48 MP: past the pixel bound, a small file
    refused = client.post("/api/predict/file", files={"file": ("big.png", big, "image/png")})
    assert refused.status_code == 413 and f"at most {settings.max_image_pixels} pixels" in refused.json()["detail"]


def test_two_file_parts_are_refused_rather_than_the_last_one_taken(client, photo):
    files = [("file", ("a.png", png_bytes(photo), "image/png")), ("file", ("b.png", png_bytes(photo), "image/png"))]
    for path, data in (("/api/filters/apply", {"preset": "box_blur"}), ("/api/predict/file", None)):
        response = client.post(path, files=files, data=data)
        assert response.status_code == 422 and "2 files" in response.json()["detail"]


def test_the_filter_form_is_documented_as_multipart_so_try_it_out_works(client):
    schema = ok(client.get("/openapi.json"))
    content = schema["paths"]["/api/filters/apply"]["post"]["requestBody"]["content"]
    assert list(content) == ["multipart/form-data"]


def test_a_phone_photo_is_turned_upright_by_its_exif_orientation(client):
    picture = Image.new("RGB", (40, 20), (250, 250, 250))  # stored landscape...
    exif = Image.Exif()
    exif[0x0112] = 6  # ...shown rotated 90 degrees: portrait, 20 wide and 40 tall
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", exif=exif)
    response = client.post(
        "/api/filters/apply", files={"file": ("p.jpg", buffer.getvalue(), "image/jpeg")}, data={"preset": "identity"}
    )
    assert response.status_code == 200
    assert response.headers["x-output-size"] == "20x40"


def test_an_unexpected_error_is_a_clean_500_with_the_security_headers(tmp_path, monkeypatch):
    from app.routes import arithmetic

    def broken(*args, **kwargs):
        raise RuntimeError("secret internal detail at 0x7f00")

    monkeypatch.setattr(arithmetic, "explain_layer", broken)
    with TestClient(create_app(Settings(data_dir=tmp_path)), raise_server_exceptions=False) as client:
        response = client.get("/api/arithmetic?input_size=5&kernel_size=3")
    assert response.status_code == 500
    assert all(h in response.headers for h in SECURITY)
    assert "secret" not in response.text and "0x7f" not in response.text
    assert json.loads(response.text)["detail"].startswith("the server failed on this request")


def test_too_many_headers_are_refused(client):
    headers = {f"x-filler-{k}": "1" for k in range(150)}
    response = client.get("/healthz", headers=headers)
    assert response.status_code == 431 and "at most 100" in response.json()["detail"]


def test_page_urls_never_come_from_the_host_header(client):
    page = client.get("/", headers={"host": "evil.example"})
    assert page.status_code == 200
    assert "evil.example" not in page.text and 'src="/static/js/digits.js"' in page.text
    redirect = client.get("/static", headers={"host": "evil.example"}, follow_redirects=False)
    assert redirect.status_code == 404 and "evil.example" not in redirect.headers.get("location", "")


def test_trusted_hosts_refuse_other_host_headers(tmp_path):
    settings = Settings(data_dir=tmp_path, trusted_hosts=["convscope.example.org"])
    with TestClient(create_app(settings), base_url="http://convscope.example.org") as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/healthz", headers={"host": "evil.example"}).status_code == 400


def test_a_busy_server_refuses_at_once_instead_of_queueing_past_the_budget(tmp_path):
    import threading

    from app.routes import arithmetic

    release = threading.Event()
    original = arithmetic.trace_pool2d

    def slow(*args, **kwargs):
        release.wait(5)
        return original(*args, **kwargs)

    settings = Settings(data_dir=tmp_path, threads=1, queue_seconds=0.2)
    with TestClient(create_app(settings)) as client:
        arithmetic.trace_pool2d = slow
        try:
            first = threading.Thread(target=lambda: client.post("/api/pool", json={"input": [[1, 2], [3, 4]]}))
            first.start()
            import time

            time.sleep(0.3)
            busy = client.post("/api/pool", json={"input": [[1, 2], [3, 4]]})
            assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
            assert "busy" in busy.json()["detail"]
            assert client.get("/healthz").status_code == 200  # health never waits behind the compute
            assert client.get("/static/css/main.css").status_code == 200
        finally:
            release.set()
            first.join()
            arithmetic.trace_pool2d = original


def test_work_past_its_budget_gives_its_slot_to_the_next_request(tmp_path):
    import threading

    from app.routes import arithmetic

    release = threading.Event()
    original = arithmetic.trace_pool2d

    def stuck(*args, **kwargs):
        release.wait(10)
        return original(*args, **kwargs)

    settings = Settings(data_dir=tmp_path, threads=1, queue_seconds=2, request_timeout_seconds=0.5)
    with TestClient(create_app(settings)) as client:
        arithmetic.trace_pool2d = stuck
        try:
            late = client.post("/api/pool", json={"input": [[1, 2], [3, 4]]})
            assert late.status_code == 503 and "budget" in late.json()["detail"]
            arithmetic.trace_pool2d = original
            # the stuck request still computes (it is released only below), but its slot is free: the next
            # one is served rather than refused after queue_seconds
            assert client.post("/api/pool", json={"input": [[1, 2], [3, 4]]}).status_code == 200
            assert not release.is_set()
        finally:
            release.set()
            arithmetic.trace_pool2d = original
