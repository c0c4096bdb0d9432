"""POST /api/predict and /api/predict/file."""

import base64

import numpy as np
import pytest
from PIL import Image

from engine import load_digits
from tests.api.conftest import ok, png_bytes
from tests.conftest import SAMPLE_PATH

LAYERS = ["conv1", "pool1", "conv2", "pool2", "fc1", "fc2", "fc3"]


@pytest.fixture(scope="module")
def digits():
    return load_digits(SAMPLE_PATH)


def drawing(digit28: np.ndarray, scale: int = 10) -> np.ndarray:
    """What a canvas gives: a big dark-on-white version of a MNIST digit."""
    big = Image.fromarray(digit28).resize((28 * scale, 28 * scale), Image.Resampling.BILINEAR)
    return 255 - np.asarray(big)


def test_pixels_of_a_real_digit_are_read_correctly(client, digits):
    images, labels = digits
    for image, label in zip(images[:10], labels[:10]):
        response = client.post("/api/predict", json={"pixels": image.tolist()})
        assert response.status_code == 200
        body = response.json()
        assert body["digit"] == label
        assert body["empty"] is False
        assert len(body["probabilities"]) == 10 and sum(body["probabilities"]) == pytest.approx(1)
        assert [t["digit"] for t in body["top"]][0] == label
        assert body["top"][0]["probability"] >= body["top"][1]["probability"]
        assert np.array(body["input"]).shape == (32, 32)
        assert "layers" not in body or body["layers"] is None


def test_a_canvas_data_url_of_dark_ink_on_white_is_inverted_and_read(client, digits):
    images, labels = digits
    url = "data:image/png;base64," + base64.b64encode(png_bytes(drawing(images[0]).astype(np.uint8))).decode()
    body = ok(client.post("/api/predict", json={"image": url}))
    assert body["digit"] == labels[0] and body["inverted"] is True


def test_transparent_canvas_with_black_strokes(client, digits):
    images, labels = digits
    ink = np.asarray(Image.fromarray(images[1]).resize((280, 280), Image.Resampling.BILINEAR))
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., 3] = ink  # black strokes whose opacity is the ink
    body = ok(client.post("/api/predict", json={"image": base64.b64encode(png_bytes(rgba)).decode()}))
    assert body["digit"] == labels[1]


def test_activations_come_for_every_layer_in_order(client, digits):
    body = ok(client.post("/api/predict?activations=true", json={"pixels": digits[0][2].tolist()}))
    assert [layer["name"] for layer in body["layers"]] == LAYERS
    assert body["layers"][0]["shape"] == [6, 28, 28]
    assert np.array(body["layers"][0]["values"]).shape == (6, 28, 28)
    assert np.array(body["layers"][3]["values"]).shape == (16, 5, 5)
    assert np.argmax(body["layers"][6]["values"]) == body["digit"]


def test_a_blank_drawing_is_empty_and_unguessed(client):
    body = ok(client.post("/api/predict", json={"pixels": [[255] * 64] * 64}))
    assert body["empty"] is True
    assert body["digit"] is None and body["probabilities"] is None and body["top"] == []


def test_a_dot_is_too_small_to_guess_and_the_response_says_so(client, digits):
    canvas = np.full((280, 280), 255, np.uint8)
    canvas[130:146, 130:146] = 0  # one 16 px tap of a pen: blown up to the 20 px box, a confident "0"
    body = ok(client.post("/api/predict?activations=true", json={"pixels": canvas.tolist()}))
    assert body["too_small"] is True and body["empty"] is False
    assert body["digit"] is None and body["probabilities"] is None and body["top"] == []
    assert len(body["layers"]) == 7  # the layers still show what the network would see
    # the same digit drawn at a normal size is read
    body = ok(client.post("/api/predict", json={"pixels": drawing(digits[0][0]).tolist()}))
    assert body["too_small"] is False and body["digit"] == digits[1][0]


def test_file_upload(client, digits):
    images, labels = digits
    files = {"file": ("digit.jpg", png_bytes(drawing(images[3]).astype(np.uint8), "JPEG"), "image/jpeg")}
    response = client.post("/api/predict/file", files=files)
    assert response.status_code == 200
    assert response.json()["digit"] == labels[3]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({}, 422, "exactly one of 'pixels'"),
        ({"pixels": [[0] * 8] * 8, "image": "aGk="}, 422, "exactly one of 'pixels'"),
        ({"pixels": [[0] * 8] * 7 + [[0] * 5]}, 422, "ragged"),
        ({"pixels": [[0] * 4] * 4}, 422, "between 8x8 and 1024x1024, got 4x4"),
        ({"pixels": [[0] * 1025] * 8}, 422, "got 8x1025"),
        ({"pixels": [[300] * 8] * 8}, 422, "values must lie in 0..255"),
        ({"pixels": [[-1] * 8] * 8}, 422, "values must lie in 0..255"),
        ({"pixels": [[[0]] * 8] * 8}, 422, "pixels"),
        ({"pixels": "not a list"}, 422, "pixels"),
        ({"image": "%%%not base64%%%"}, 422, "not valid base64"),
        ({"image": base64.b64encode(b"GIF89a......").decode()}, 415, "not a PNG, JPEG or WebP"),
        ({"image": "data:image/png,abc"}, 422, "must be base64-encoded"),
    ],
)
def test_bad_input_gets_a_4xx_that_says_what_is_wrong(client, body, status, message):
    response = client.post("/api/predict", json=body)
    assert response.status_code == status
    assert message in response.json()["detail"]


def test_nan_and_infinity_are_refused(client):
    raw = '{"pixels": [' + ",".join(["[" + ",".join(["NaN"] * 8) + "]"] * 8) + "]}"
    response = client.post("/api/predict", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "finite" in response.json()["detail"] or "NaN" in response.json()["detail"]


def test_a_truncated_png_is_refused(client, digits):
    data = png_bytes(drawing(digits[0][0]).astype(np.uint8))
    response = client.post("/api/predict", json={"image": base64.b64encode(data[: len(data) // 2]).decode()})
    assert response.status_code == 422
    assert "corrupt or truncated" in response.json()["detail"]


def test_a_text_file_upload_is_refused(client):
    response = client.post("/api/predict/file", files={"file": ("digit.png", b"just text", "image/png")})
    assert response.status_code == 415
    assert "not a PNG, JPEG or WebP" in response.json()["detail"]


def test_missing_upload_field(client):
    response = client.post("/api/predict/file", files={"other": ("x.png", b"", "image/png")})
    assert response.status_code == 422
    assert "file" in response.json()["detail"]


def test_a_decompression_bomb_is_refused_before_decoding(client):
    # a tiny PNG whose header claims 20000 x 20000 pixels
    huge = Image.new("L", (20000, 20000))
    import io

    buffer = io.BytesIO()
    huge.save(buffer, format="PNG")
    response = client.post("/api/predict/file", files={"file": ("bomb.png", buffer.getvalue(), "image/png")})
    assert response.status_code == 413
    assert "pixels" in response.json()["detail"]


def test_a_large_phone_photo_of_a_digit_is_read(client, digits):
    images, labels = digits
    # a 3000x2000 photo: grey paper, a dark digit somewhere on it, JPEG noise
    photo = np.full((2000, 3000), 200, np.uint8)
    big = 255 - np.asarray(Image.fromarray(images[5]).resize((700, 700), Image.Resampling.BILINEAR))
    photo[600:1300, 1800:2500] = np.minimum(photo[600:1300, 1800:2500], big)
    buffer = __import__("io").BytesIO()
    Image.fromarray(photo).save(buffer, format="JPEG", quality=85)
    response = client.post("/api/predict/file", files={"file": ("photo.jpg", buffer.getvalue(), "image/jpeg")})
    assert response.status_code == 200
    assert response.json()["digit"] == labels[5]
