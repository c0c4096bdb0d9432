"""Digit predictions: from a 2-D list of pixels, a base64 image, or an uploaded file."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Query, UploadFile
from fastapi.responses import Response
from PIL import Image

from app.deps import ModelDep, ModelIdDep, SettingsDep
from app.errors import ApiError
from app.imaging import decode_base64_image, decode_image, to_grayscale
from app.jsonutil import json_response
from app.schemas import PIXELS_SIDE, PredictRequest, PredictResponse
from engine.network import Network, classify
from engine.preprocess import frame_for

router = APIRouter(prefix="/api/predict", tags=["predict"])

ActivationsQuery = Query(False, description="add every layer's output (LeNet: conv1 ... fc3) to the response")


def classify_input(model: Network, x: np.ndarray, empty: bool, with_layers: bool) -> dict:
    """The network's input (C, H, W) -> the guess, and every layer's output if asked."""
    body: dict = {"digit": None, "label": None, "probabilities": None, "top": []}
    if empty and not with_layers:
        return body
    activations = model.activations(x[None])
    if not empty:
        guess = classify(next(reversed(activations.values()))[0], k=2)
        labels = model.labels
        body.update(
            digit=guess.top[0][0],
            label=labels[guess.top[0][0]],
            probabilities=guess.probabilities.tolist(),
            top=[{"digit": c, "label": labels[c], "probability": p} for c, p in guess.top],
        )
    if with_layers:
        body["layers"] = [
            {"name": name, "shape": list(value.shape[1:]), "values": np.round(value[0], 4)}
            for name, value in activations.items()
        ]
    return body


def predict_picture(model: Network, model_id: str, gray: np.ndarray, with_layers: bool) -> dict:
    """Grayscale picture (H, W) 0..255 -> the response body of /api/predict, prepared as the model's
    data set was (digits: MNIST's crop, box and centre of mass; clothing: the whole picture)."""
    x, frame = frame_for(model.meta.get("dataset", "digits"), gray, model.input_shape)
    body = {
        "model": model_id,
        "labels": model.labels,
        "input": np.round(x[0] if x.shape[0] == 1 else x, 4),
        "empty": frame.empty,
        "inverted": frame.inverted,
    }
    return body | classify_input(model, x, frame.empty, with_layers)


def predict_frame(model: Network, model_id: str, frame: np.ndarray, with_layers: bool) -> dict:
    """The network's own input, edited directly: no preprocessing."""
    x = frame if frame.ndim == 3 else frame[None]
    if x.shape != model.input_shape:
        expected = "x".join(map(str, model.input_shape))
        raise ApiError(
            422,
            f"frame: this model's input is {expected} (channels x height x width), got {'x'.join(map(str, x.shape))}",
        )
    empty = not x.any()
    body = {"model": model_id, "labels": model.labels, "input": frame, "empty": empty, "inverted": False}
    return body | classify_input(model, x.astype(np.float32), empty, with_layers)


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
    request: PredictRequest,
    model: ModelDep,
    model_id: ModelIdDep,
    settings: SettingsDep,
    activations: bool = ActivationsQuery,
) -> Response:
    """Prepares the picture as the model's data set was (a digit like MNIST: crop, 20 px box, centre of
    mass, 32x32) and runs the model (``?model=ID``, default the shipped LeNet); a ``frame`` is run as is."""
    if request.frame is not None:
        return json_response(predict_frame(model, model_id, request.frame, activations))
    if request.pixels is not None:
        gray = request.pixels
    else:
        image = decode_base64_image(request.image, max_pixels=settings.max_image_pixels)
        gray = grayscale_for_digit(image, "image")
    return json_response(predict_picture(model, model_id, gray, activations))


@router.post("/file", response_model=PredictResponse, summary="Guess the digit in an uploaded image")
def predict_file(
    file: UploadFile,
    model: ModelDep,
    model_id: ModelIdDep,
    settings: SettingsDep,
    activations: bool = ActivationsQuery,
) -> Response:
    """The same as POST /api/predict, from a multipart upload field ``file`` (PNG, JPEG or WebP)."""
    image = decode_image(file.file.read(), max_pixels=settings.max_image_pixels, field="file")
    gray = grayscale_for_digit(image, "file")
    return json_response(predict_picture(model, model_id, gray, activations))
