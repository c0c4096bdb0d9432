"""The shipped data sets' pictures: galleries to click, misclassified test images, replay examples."""

from __future__ import annotations

from typing import Literal

import numpy as np
from fastapi import APIRouter, Query
from fastapi.responses import Response

from app.deps import SettingsDep
from app.errors import ApiError
from app.jsonutil import json_response
from app.schemas.models import DatasetImages, DatasetLabels
from engine.datasets import load_dataset

router = APIRouter(prefix="/api/datasets", tags=["models"])


@router.get("/{name}/images", response_model=DatasetImages, summary="Pictures of a shipped data set")
def images(
    settings: SettingsDep,
    name: Literal["digits", "fashion"],
    split: Literal["train", "test"] = "test",
    indices: str | None = Query(None, max_length=2000, description="comma-separated indices, e.g. 3,17,42"),
    start: int = Query(0, ge=0),
    count: int = Query(24, ge=1, description="at most CONVSCOPE_MAX_DATASET_IMAGES (200)"),
    label: int | None = Query(None, ge=0, le=9, description="only pictures of this class"),
) -> Response:
    """28x28 uint8 pictures (white on black) with their labels: by ``indices``, or ``count`` from ``start``
    (of one class if ``label`` is given). At most ``CONVSCOPE_MAX_DATASET_IMAGES`` (200) at a time."""
    most = settings.max_dataset_images
    if count > most:
        raise ApiError(422, f"count: Input should be less than or equal to {most} (got {count})")
    data = load_dataset(name, split)
    if indices is not None:
        try:
            chosen = np.array([int(i) for i in indices.split(",") if i.strip()], dtype=np.int64)
        except ValueError:
            raise ApiError(422, f"indices: comma-separated whole numbers, got {indices[:40]!r}") from None
        if len(chosen) > most:
            raise ApiError(422, f"indices: at most {most} at a time, got {len(chosen)}")
        if len(chosen) and (chosen.min() < 0 or chosen.max() >= len(data)):
            raise ApiError(422, f"indices: the {name} {split} split has pictures 0..{len(data) - 1}")
    else:
        pool = np.arange(len(data)) if label is None else np.flatnonzero(data.labels == label)
        chosen = pool[start : start + count]
    return json_response(
        {
            "dataset": name,
            "split": split,
            "size": len(data),
            "classes": list(data.classes),
            "indices": chosen,
            "labels": data.labels[chosen].astype(int),
            "images": data.images[chosen],
        }
    )


@router.get("/{name}/labels", response_model=DatasetLabels, summary="The labels of a shipped data set")
def labels(name: Literal["digits", "fashion"], split: Literal["train", "test"] = "test") -> Response:
    """Every picture's class, in order: with a model's ``predictions`` it says which pictures fill each
    cell of the confusion matrix."""
    data = load_dataset(name, split)
    return json_response({"dataset": name, "split": split, "classes": list(data.classes), "labels": data.labels})
