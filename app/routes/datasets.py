"""Data sets: the shipped ones' pictures (galleries to click, misclassified test images, replay examples),
and data sets of your own (classes you name, examples you draw, photograph or upload)."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, File, Form, Path, Query, UploadFile
from fastapi.responses import Response

from app.deps import AddressDep, OwnerDep, SettingsDep, StoreDep, ViewerDep
from app.errors import ApiError, error_responses
from app.jsonutil import json_response
from app.schemas.datasets import DatasetCreate, DatasetList, DatasetSummary, DatasetView, ExampleList, ExamplesAdd
from app.schemas.models import DatasetImages, DatasetLabels
from app.services import datasets as own_data
from engine.datasets import DATASETS
from engine.names import clean_name

router = APIRouter(prefix="/api/datasets", tags=["models"])

OWN = error_responses(401, 404)


DatasetName = Annotated[str, Path(pattern=r"^(digits|fashion|d[0-9a-f]{12})$", description="digits, fashion or yours")]


def readable(store, workspace, name: str, split: str):
    """A shipped data set's split, or (for its owner) an own one's."""
    if name not in DATASETS:
        own_data.owned(store, workspace, name)
    return own_data.resolve(store, name, split)


@router.get("/{name}/images", response_model=DatasetImages, summary="Pictures of a data set", responses=OWN)
def images(
    settings: SettingsDep,
    store: StoreDep,
    workspace: ViewerDep,
    name: DatasetName,
    split: Literal["train", "test"] = "test",
    indices: str | None = Query(None, max_length=2000, description="comma-separated indices, e.g. 3,17,42"),
    start: int = Query(0, ge=0),
    count: int = Query(24, ge=1, description="at most CONVSCOPE_MAX_DATASET_IMAGES (200)"),
    label: int | None = Query(None, ge=0, le=99, description="only pictures of this class"),
) -> Response:
    """28x28 uint8 pictures (white on black) with their labels: by ``indices``, or ``count`` from ``start``
    (of one class if ``label`` is given). At most ``CONVSCOPE_MAX_DATASET_IMAGES`` (200) at a time."""
    most = settings.max_dataset_images
    if count > most:
        raise ApiError(422, f"count: Input should be less than or equal to {most} (got {count})")
    data = readable(store, workspace, name, split)
    if indices is not None:
        try:
            chosen = np.array([int(i) for i in indices.split(",") if i.strip()], dtype=np.int64)
        except ValueError:
            raise ApiError(422, f"indices: comma-separated whole numbers, got {indices[:40]!r}") from None
        except OverflowError:  # a number past int64
            raise ApiError(422, f"indices: the {name} {split} split has pictures 0..{len(data) - 1}") from None
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


@router.get("/{name}/labels", response_model=DatasetLabels, summary="The labels of a data set", responses=OWN)
def labels(
    store: StoreDep, workspace: ViewerDep, name: DatasetName, split: Literal["train", "test"] = "test"
) -> Response:
    """Every picture's class, in order: with a model's ``predictions`` it says which pictures fill each
    cell of the confusion matrix."""
    data = readable(store, workspace, name, split)
    return json_response({"dataset": name, "split": split, "classes": list(data.classes), "labels": data.labels})


# -- data sets of your own ---------------------------------------------------------------------------------


@router.get("", response_model=DatasetList, summary="Your data sets")
def own_datasets(store: StoreDep, workspace: ViewerDep) -> Response:
    return json_response({"datasets": own_data.list_datasets(store, workspace)})


@router.post("", status_code=201, response_model=DatasetSummary, summary="Make a data set of your own")
def create_dataset(
    body: DatasetCreate, store: StoreDep, settings: SettingsDep, workspace: OwnerDep, address: AddressDep
) -> Response:
    """Name its classes (2 to 20) and its kind: ``digit`` (drawings, prepared as MNIST's digits, 1x28x28)
    or ``picture`` (photos scaled to fit 3x32x32). Then add examples."""
    made = own_data.create_dataset(store, settings, workspace, address, body.name, body.classes, body.kind)
    return json_response(made, status_code=201)


@router.post(
    "/import",
    status_code=201,
    response_model=DatasetSummary,
    summary="Import an ImageFolder zip",
    responses=error_responses(400, 401, 413, s422="not a zip, a hostile entry, or a class with too few pictures"),
)
def import_folder(
    file: Annotated[UploadFile, File(description="a zip: one folder of PNG/JPEG/WebP pictures per class")],
    store: StoreDep,
    settings: SettingsDep,
    workspace: OwnerDep,
    address: AddressDep,
    name: Annotated[str, Form(min_length=1, max_length=60)] = "my pictures",
    kind: Annotated[Literal["digit", "picture"], Form()] = "picture",
) -> Response:
    """torchvision's ImageFolder layout. Refused: paths out of the folder, links, zips inside, zip bombs,
    more than 2 to 20 classes or fewer than 5 pictures in one. Files that are not pictures are skipped
    and listed in ``skipped``."""
    data = file.file.read(settings.dataset_zip_max_bytes + 1)
    made = own_data.import_zip(store, settings, workspace, address, data, clean_name(name) or "my pictures", kind)
    return json_response(made, status_code=201)


@router.get("/{dataset_id}", response_model=DatasetView, summary="One of your data sets", responses=OWN)
def own_dataset(dataset_id: str, store: StoreDep, settings: SettingsDep, workspace: ViewerDep) -> Response:
    """Counts per class (train / held-out test), and every example with its thumbnail."""
    view = own_data.dataset_view(store, workspace, dataset_id)
    return json_response({**view, "min_per_class": settings.dataset_min_per_class})


@router.post(
    "/{dataset_id}/images", response_model=DatasetSummary, summary="Add examples", responses=error_responses(401, 404)
)
def add_examples(
    dataset_id: str, body: ExamplesAdd | ExampleList, store: StoreDep, settings: SettingsDep, workspace: ViewerDep
) -> Response:
    """``{"examples": [...]}`` or the bare list ``[...]`` of ``{label, image | pixels}``: each ``label`` a class's
    name or its index. Each example is prepared as the data set's kind says, and goes to training or to the
    held-out test split (at least 20% of each class is held out, chosen once and kept)."""
    if workspace is None:
        raise ApiError(404, f"dataset: no data set {dataset_id!r} in your workspace")
    batch = body.examples if isinstance(body, ExamplesAdd) else body.root
    examples = [e.model_dump() for e in batch]
    return json_response(own_data.add_examples(store, settings, workspace, dataset_id, examples))


@router.delete(
    "/{dataset_id}/images/{example_id}", response_model=DatasetSummary, summary="Delete an example", responses=OWN
)
def delete_example(dataset_id: str, example_id: str, store: StoreDep, workspace: ViewerDep) -> Response:
    return json_response(own_data.delete_example(store, workspace, dataset_id, example_id))


@router.delete("/{dataset_id}", status_code=204, summary="Delete a data set", responses=OWN)
def delete_dataset(dataset_id: str, store: StoreDep, workspace: ViewerDep) -> Response:
    """Models trained on it stay; their learned views lose its pictures."""
    own_data.delete_dataset(store, workspace, dataset_id)
    return Response(status_code=204)
