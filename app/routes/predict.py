"""Digit predictions: from a 2-D list of pixels, a base64 image, or an uploaded file."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, File, Query, UploadFile
from fastapi.responses import Response

from app import budgets
from app.deps import ModelDep, ModelIdDep, SettingsDep, one_file_part
from app.errors import error_responses
from app.imaging import decode_image
from app.inputs import NetworkInput, from_image, network_input
from app.jsonutil import json_response
from app.schemas import PredictRequest, PredictResponse
from engine.network import Network, classify

router = APIRouter(prefix="/api/predict", tags=["predict"])

# a request naming a model (?model=): unknown or another workspace's, still training, or a bad token
MODEL_ERRORS = error_responses(401, 404, 409)

ActivationsQuery = Query(False, description="add every layer's output (LeNet: conv1 ... fc3) to the response")


def classify_input(model: Network, x: np.ndarray, guessable: bool, with_layers: bool) -> dict:
    """The network's input (C, H, W) -> the guess (none for an empty or too small drawing), and every
    layer's output if asked."""
    body: dict = {"digit": None, "label": None, "probabilities": None, "top": []}
    if not guessable and not with_layers:
        return body
    activations = model.activations(x[None])
    if guessable:
        guess = classify(next(reversed(activations.values()))[0], k=2, independent=model.independent)
        labels = model.labels
        body.update(
            independent=model.independent,
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


def prediction(model: Network, model_id: str, given: NetworkInput, with_layers: bool) -> dict:
    """The response body of /api/predict for the network's input."""
    body = {
        "model": model_id,
        "labels": model.labels,
        "input": given.as_json(),
        "empty": given.empty,
        "too_small": given.too_small,
        "inverted": given.inverted,
    }
    return body | classify_input(model, given.x, given.guessable, with_layers)


# Routes are plain ``def``: FastAPI runs them in its thread pool, so decoding and the
# network's NumPy work never block the event loop.


@router.post("", response_model=PredictResponse, summary="Guess the digit in a drawing", responses=MODEL_ERRORS)
def predict(
    request: PredictRequest,
    model: ModelDep,
    model_id: ModelIdDep,
    settings: SettingsDep,
    activations: bool = ActivationsQuery,
) -> Response:
    """Prepares the picture as the model's data set was (a digit like MNIST: crop, 20 px box, centre of
    mass, 32x32) and runs the model (``?model=ID``, default the shipped LeNet); a ``frame`` is run as is."""
    budgets.check_predict(settings, model, activations)
    return json_response(prediction(model, model_id, network_input(model, request, settings), activations))


@router.post(
    "/file",
    response_model=PredictResponse,
    summary="Guess the digit in an uploaded image",
    responses={**MODEL_ERRORS, **error_responses(400, 413, 415)},
)
def predict_file(
    file: Annotated[UploadFile, File(description="PNG, JPEG or WebP picture")],
    _single: Annotated[None, Depends(one_file_part)],
    model: ModelDep,
    model_id: ModelIdDep,
    settings: SettingsDep,
    activations: bool = ActivationsQuery,
) -> Response:
    """The same as POST /api/predict, from a multipart upload field ``file`` (PNG, JPEG or WebP)."""
    image = decode_image(file.file.read(), settings, field="file", fit=settings.pixels_max_side)
    given = from_image(model, image, settings, "file")
    budgets.check_predict(settings, model, activations)
    return json_response(prediction(model, model_id, given, activations))
