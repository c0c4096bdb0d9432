"""Digit predictions: from a 2-D list of pixels, a base64 image, or an uploaded file."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Query, UploadFile
from fastapi.responses import Response
from PIL import Image

from app.deps import ModelDep, SettingsDep
from app.errors import ApiError
from app.imaging import decode_base64_image, decode_image, to_grayscale
from app.jsonutil import json_response
from app.schemas import PIXELS_SIDE, PredictRequest, PredictResponse
from engine.network import Network, classify
from engine.preprocess import preprocess_digit

router = APIRouter(prefix="/api/predict", tags=["predict"])

ActivationsQuery = Query(False, description="add every layer's output (conv1 ... fc3) to the response")


def predict_digit(model: Network, gray: np.ndarray, with_layers: bool) -> dict:
    """Grayscale picture (H, W) 0..255 -> the response body of /api/predict."""
    frame = preprocess_digit(gray)
    body: dict = {
        "input": np.round(frame.pixels, 4),
        "empty": frame.empty,
        "inverted": frame.inverted,
        "digit": None,
        "probabilities": None,
        "top": [],
    }
    if frame.empty and not with_layers:
        return body
    activations = model.activations(frame.pixels[None, None])
    if not frame.empty:
        guess = classify(next(reversed(activations.values()))[0], k=2)
        body.update(
            digit=guess.top[0][0],
            probabilities=guess.probabilities.tolist(),
            top=[{"digit": c, "probability": p} for c, p in guess.top],
        )
    if with_layers:
        body["layers"] = [
            {"name": name, "shape": list(value.shape[1:]), "values": np.round(value[0], 4)}
            for name, value in activations.items()
        ]
    return body


def grayscale_for_digit(image: Image.Image, field: str) -> np.ndarray:
    """A decoded picture -> (H, W) grayscale for the preprocessing, big photos shrunk first."""
    if min(image.size) < PIXELS_SIDE[0]:
        raise ApiError(
            422,
            f"{field}: the image is {image.width}x{image.height}; digits need at least "
            f"{PIXELS_SIDE[0]}x{PIXELS_SIDE[0]} pixels",
        )
    # the digit ends up 20 px tall: a phone photo needs no more than 1024 px to get there
    image.thumbnail((PIXELS_SIDE[1], PIXELS_SIDE[1]))
    return to_grayscale(image)


# Routes are plain ``def``: FastAPI runs them in its thread pool, so decoding and the
# network's NumPy work never block the event loop.


@router.post("", response_model=PredictResponse, summary="Guess the digit in a drawing")
def predict(
    request: PredictRequest, model: ModelDep, settings: SettingsDep, activations: bool = ActivationsQuery
) -> Response:
    """Preprocesses the drawing like MNIST (crop, 20 px box, centre of mass, 32x32) and runs LeNet."""
    if request.pixels is not None:
        gray = request.pixels
    else:
        image = decode_base64_image(request.image, max_pixels=settings.max_image_pixels)
        gray = grayscale_for_digit(image, "image")
    return json_response(predict_digit(model, gray, activations))


@router.post("/file", response_model=PredictResponse, summary="Guess the digit in an uploaded image")
def predict_file(
    file: UploadFile, model: ModelDep, settings: SettingsDep, activations: bool = ActivationsQuery
) -> Response:
    """The same as POST /api/predict, from a multipart upload field ``file`` (PNG, JPEG or WebP)."""
    image = decode_image(file.file.read(), max_pixels=settings.max_image_pixels, field="file")
    gray = grayscale_for_digit(image, "file")
    return json_response(predict_digit(model, gray, activations))
