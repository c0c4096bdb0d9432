"""Models in and out of convscope: an ONNX file imported into a workspace, any model exported as ONNX or
as a PyTorch file. The conversions are the engine's (:mod:`engine.onnx_import`, :mod:`engine.onnx_export`,
:mod:`engine.pytorch_export`); this module checks what a person sent and stores the result."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from app.config import Settings
from app.errors import Refused, TooLarge
from app.jobs.store import JobStore
from app.services import datasets as own_data
from app.services.models import store_model, test_metrics
from app.services.quotas import check_room
from app.services.registry import ModelRef
from app.services.training import job_bytes
from app.services.workspaces import Workspace
from engine.datasets import DATASETS, Dataset
from engine.memory import kept_bytes, megabytes
from engine.names import MAX_CLASS_NAME, clean_name, plain_text
from engine.network import Network
from engine.onnx_export import export_onnx
from engine.onnx_import import Limits, Preparation, import_onnx
from engine.pytorch_export import export_pytorch
from engine.spec import multiply_adds

PREPARATIONS = ("digit", "picture", "none")


@dataclass(frozen=True)
class ImportRequest:
    """What a person sends with the file, each part optional but the file."""

    data: bytes
    filename: str
    name: str | None = None
    labels: str | None = None  # a JSON list of class names
    preprocess: str | None = None
    dataset: str | None = None
    input_range: str | None = None  # the pictures' range the model was trained on: 0..1, 0..255 or -1..1
    mean: str | None = None  # one number, or one a channel (comma-separated or a JSON list)
    std: str | None = None


def import_model(
    store: JobStore, settings: Settings, workspace: Workspace, address: str, request: ImportRequest
) -> dict[str, Any]:
    """Converts the ONNX file, checks it against the server's bounds and the data set it names, and stores
    it in the workspace; the answer carries the model's id, spec and the conversion report."""
    check_request(store, settings, workspace, request)
    limits = Limits(settings.import_max_nodes, settings.import_input_sides)
    imported = import_onnx(request.data, limits, _preparation(request))
    network = imported.network
    check_bounds(settings, network)
    check_room(store, settings, workspace, address, job_bytes(network.parameter_count))
    labels, metrics = _labels(request, network), None
    if request.dataset is not None:
        test = _dataset_test(store, request.dataset, network)
        labels = labels or (None if network.meta.get("labels") else list(test.classes))
        metrics = test_metrics(network, test)
    name = clean_name(request.name or re.sub(r"\.onnx$", "", request.filename, flags=re.I) or "Imported model")
    preparation = request.preprocess or _default_preparation(store, request.dataset, network)
    network.meta.update(
        name=name, dataset=request.dataset, preprocess=preparation, import_report=imported.report, source="onnx"
    )
    if labels:
        network.meta["labels"] = labels
    settings_kept = {
        "imported_from": clean_name(request.filename),
        "preprocess": preparation,
        "report": imported.report,
        "preparation": network.meta["preparation"],
        "outputs": network.meta["outputs"],
    }
    record: dict[str, Any] = {
        "id": "i" + uuid.uuid4().hex[:12],
        "kind": "imported",
        "origin": "import",
        "base": None,
        "line": [],
        "name": name,
        "dataset": request.dataset,
    }
    record |= {"settings": settings_kept, "metrics": metrics}
    job = store_model(store, settings, workspace, address, network, record)
    return {
        "id": job["id"],
        "name": name,
        "spec": network.spec,
        "labels": network.labels,
        "parameters": network.parameter_count,
        "dataset": request.dataset,
        "preprocess": preparation,
        "test_accuracy": metrics["test_accuracy"] if metrics else None,
        "report": imported.report,
        "check_logits": network.meta["import_check"]["logits"],
        "preparation": network.meta["preparation"],
        "outputs": network.meta["outputs"],
        "file_input": network.meta["file_input"],
    }


def _preparation(request: ImportRequest) -> Preparation | None:
    """The preparation the form gives (each field optional), or None to take the file's ``metadata_props``."""
    if request.input_range is None and request.mean is None and request.std is None:
        return None
    numbers = {key: _numbers(key, getattr(request, key)) for key in ("mean", "std")}
    return Preparation(request.input_range or "0..1", numbers["mean"] or (0.0,), numbers["std"] or (1.0,))


def _numbers(key: str, text: str | None) -> tuple[float, ...] | None:
    """``0.1307``, ``0.485, 0.456, 0.406`` or ``[0.485, 0.456, 0.406]`` -> the numbers; a 422 otherwise."""
    if text is None or not text.strip():
        return None
    parts = text.strip().removeprefix("[").removesuffix("]").split(",")
    try:
        values = tuple(float(part) for part in parts)
    except ValueError:
        raise Refused(f"{key}: {text[:40]!r} is not numbers; give one, or one a channel: 0.485, 0.456, 0.406") from None
    if len(values) > 3:
        raise Refused(f"{key}: {len(values)} numbers; give one, or one a channel (at most 3)")
    return values


def check_bounds(settings: Settings, network: Network) -> None:
    """An imported model's cost against the server's bounds: multiply-adds and parameters a picture, and
    the memory of one picture's pass that keeps every layer's maps (what the drawing page shows)."""
    cost = multiply_adds(network.plans)
    if cost > settings.import_max_multiply_adds:
        raise Refused(
            f"file: one picture costs this model {cost:,} multiply-adds, more than the "
            f"{settings.import_max_multiply_adds:,} an imported model may cost here"
        )
    if network.parameter_count > settings.import_max_parameters:
        raise Refused(
            f"file: the model has {network.parameter_count:,} parameters, more than the "
            f"{settings.import_max_parameters:,} an imported model may have here"
        )
    kept = kept_bytes(network.plans)
    if kept > settings.max_request_bytes:
        raise Refused(
            f"file: showing every layer's maps for one picture takes {megabytes(kept)}, more than the "
            f"{megabytes(settings.max_request_bytes)} a request may use here (a smaller input would fit)"
        )


def check_request(store: JobStore, settings: Settings, workspace: Workspace, request: ImportRequest) -> None:
    """The file's size, and a data set and preparation that exist (a data set of one's own must be one's own)."""
    if len(request.data) > settings.import_max_bytes:
        raise TooLarge(
            f"file: {len(request.data)} bytes; an imported model is at most {settings.import_max_bytes} bytes"
        )
    if request.dataset is not None and request.dataset not in DATASETS:
        if not request.dataset.startswith("d") or store.get_doc("dataset", request.dataset) is None:
            raise Refused(
                f"dataset: {request.dataset!r} is not one; choose {', '.join(DATASETS)}, one of yours, or none"
            )
        own_data.owned(store, workspace, request.dataset)
    if request.preprocess is not None and request.preprocess not in PREPARATIONS:
        raise Refused(f"preprocess: {request.preprocess!r}; choose one of {', '.join(PREPARATIONS)}")


def _dataset_test(store: JobStore, dataset: str, network: Network) -> Dataset:
    """The data set's test split, when it has as many classes as the model has outputs."""
    test = own_data.resolve(store, dataset, "test")
    if len(test.classes) != network.classes:
        raise Refused(
            f"dataset: {dataset} has {len(test.classes)} classes but the model gives {network.classes} scores; "
            "leave the data set out, or import a model of its classes",
        )
    return test


def _labels(request: ImportRequest, network: Network) -> list[str] | None:
    """The class names the request gives (a JSON list, one per output), or None to keep the file's."""
    if not request.labels:
        return None
    try:
        labels = json.loads(request.labels)
    except ValueError:
        raise Refused('labels: not JSON; send a list of class names, e.g. ["cat", "dog"]') from None
    if not isinstance(labels, list) or len(labels) != network.classes:
        raise Refused(f"labels: send a list of {network.classes} class names, one per output of the model")
    return [plain_text(str(label), MAX_CLASS_NAME) or str(k) for k, label in enumerate(labels)]


def _default_preparation(store: JobStore, dataset: str | None, network: Network) -> str:
    """A data set's own recipe; without one, digits for a gray model and whole pictures for a colour one."""
    if dataset is not None:
        return own_data.preparation(store, dataset)
    return "digit" if network.input_shape[0] == 1 else "picture"


def export_model(ref: ModelRef, network: Network, fmt: str) -> tuple[bytes, str, str]:
    """(the file's bytes, its media type, its file name) for a model in ``fmt`` (onnx or pytorch)."""
    stem = re.sub(r"[^A-Za-z0-9]+", "_", str(network.meta.get("name") or ref.id)).strip("_").lower()[:40]
    stem = stem if stem and stem[0].isalpha() else f"model_{stem}"
    if fmt == "onnx":
        return export_onnx(network), "application/octet-stream", f"{stem}.onnx"
    return export_pytorch(network, module=stem).encode(), "text/x-python; charset=utf-8", f"{stem}.py"
