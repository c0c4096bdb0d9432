"""Request and response models of the training service (``/api/models``)."""

from __future__ import annotations

import copy
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.schemas import LayerDescription
from app.schemas.datasets import DatasetSummary
from engine.architectures import ARCHITECTURES
from engine.names import MAX_NAME

DEFAULTS_WORDS = "fewer than 500 training pictures: 20 epochs of batch 8, augmented; 500-2,999: 5 of 16; more: 2 of 32"


class TrainRequest(BaseModel):
    """A network to train: its architecture (a spec, as ``engine.build_network`` takes) and how."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "my first CNN",
                    "dataset": "digits",
                    "architecture": ARCHITECTURES["tiny"],
                    "epochs": 1,
                    "batch_size": 32,
                    "learning_rate": 0.003,
                    "optimizer": "adam",
                    "augment": False,
                    "seed": 0,
                },
                {"name": "my symbols, fine-tuned", "dataset": "d0123456789ab", "start_from": "lenet"},
            ]
        },
    )

    name: str = Field("my network", max_length=MAX_NAME, description="plain text, at most 60 characters")
    dataset: str = Field(
        "digits",
        pattern=r"^(digits|fashion|d[0-9a-f]{12})$",
        description="a shipped data set (digits, fashion) or one of yours (its id, GET /api/datasets)",
    )
    architecture: dict[str, Any] | str | None = Field(
        None,
        description="a network spec (input, classes, layers), or a ready-made one's name (GET /api/architectures); "
        "not needed with start_from",
    )
    start_from: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="fine-tune: a model you may see (e.g. lenet); its layers are kept and its output layer "
        "replaced for the data set's classes",
    )
    freeze: list[str] = Field(
        default_factory=list, max_length=32, description="with start_from: layers that keep their weights"
    )
    epochs: int | None = Field(None, ge=1, le=30, description=f"left out: by the data set's size ({DEFAULTS_WORDS})")
    batch_size: int | None = Field(None, ge=1, le=512, description="left out: by the data set's size")
    learning_rate: float | None = Field(
        None, gt=0, le=1, allow_inf_nan=False, description="left out: 0.003 (Adam's usual step)"
    )
    optimizer: Literal["adam", "sgd"] = "adam"
    augment: bool | None = Field(
        None,
        description="random warps (digits, drawings) or shifts and mirror images (clothing); left out: on for a "
        "small or medium data set that has a warp of its kind",
    )
    train_size: int | None = Field(None, ge=1, description="training images used (default: the whole split)")
    seed: int | None = Field(
        None,
        ge=0,
        le=2**31 - 1,
        description="initial weights, shuffling and augmentation; left out, a random one is drawn (and reported "
        "in the job as settings.seed and seed), so the same design trained twice shows training's randomness",
    )

    @field_validator("architecture")
    @classmethod
    def _named_preset(cls, value: dict[str, Any] | str | None) -> dict[str, Any] | None:
        if value is None or isinstance(value, dict):
            return value
        if value not in ARCHITECTURES:
            raise ValueError(f"not a ready-made architecture; the names are {', '.join(ARCHITECTURES)}, or send a spec")
        return copy.deepcopy(ARCHITECTURES[value])

    @field_validator("name")
    @classmethod
    def _plain_text(cls, value: str) -> str:
        # plain text only: control characters would garble logs and pages (pages escape the rest)
        cleaned = "".join(ch for ch in value if ch.isprintable()).strip()
        if not cleaned:
            raise ValueError("name must have at least one visible character")
        return cleaned

    @model_validator(mode="after")
    def _design_or_start(self) -> TrainRequest:
        if self.architecture is None and self.start_from is None:
            raise ValueError("send an architecture, or start_from (a model to fine-tune)")
        if self.freeze and self.start_from is None:
            raise ValueError("freeze needs start_from: only a model's existing layers can be kept")
        return self


class JobCreated(BaseModel):
    id: str = Field(examples=["m3f9a1c2b7d4e"])
    status: Literal["queued"] = "queued"
    position: int | None = Field(description="1: next to start", examples=[1])
    wait_seconds: float | None = Field(None, description="predicted time until it starts", examples=[40.0])
    estimate_seconds: float | None = Field(None, description="predicted training time", examples=[12.5])
    seed: int = Field(description="the seed it trains with (drawn at random unless the request gave one)")
    events: str = Field(examples=["/api/models/m3f9a1c2b7d4e/events"])


class HistoryPoint(BaseModel):
    step: int
    epoch: int
    loss: float
    accuracy: float = Field(description="running mean over the epoch so far")


class EpochRow(BaseModel):
    epoch: int
    val_accuracy: float | None = Field(description="on the data set's test split")
    seconds: float = Field(description="since training started")


class Metrics(BaseModel):
    test_accuracy: float = Field(examples=[0.9625])
    test_size: int | None = Field(None, examples=[800])
    confusion: list[list[int]] = Field(description="rows: true class, columns: guess")
    per_class_accuracy: list[float]
    training_seconds: float | None = None
    predictions: list[int] | None = Field(None, description="the guess for each test picture, in order")


JobStatus = Literal["queued", "running", "done", "failed", "cancelled"]
Origin = Literal["trained", "copy", "edit", "import", "shipped"]
ORIGIN_WORDS = (
    "how the model was made: trained by a training job here (from scratch or fine-tuned), a copy, an edit "
    "(network surgery), an imported ONNX file, or shipped with convscope"
)


class ModelJob(BaseModel):
    id: str
    name: str
    kind: Literal["shipped", "trained", "edited", "imported"] = "trained"
    origin: Origin = Field("trained", description=ORIGIN_WORDS)
    base: str | None = Field(None, description="the model a copy, an edit or a fine-tune was made from")
    status: JobStatus
    dataset: str | None = Field(description="its data set; null for a model imported without one")
    classes: list[str]
    architecture: dict[str, Any]
    layers: list[LayerDescription]
    parameters: int
    created: float | None = Field(description="Unix time")
    started: float | None
    finished: float | None
    position: int | None = Field(None, description="place in the queue while queued")
    wait_seconds: float | None = Field(None, description="predicted time until it starts, while queued")
    estimate_seconds: float | None = Field(None, description="predicted training time, from the spec")
    bytes: int = Field(0, description="what it stores: events, snapshots and weights")
    message: str | None = Field(None, description="why it failed, in words")
    test_accuracy: float | None = Field(None, description="metrics.test_accuracy, where GET /api/models puts it")
    settings: dict[str, Any]
    seed: int | None = Field(None, description="the seed it was trained with: send it again to repeat the run")
    history: list[HistoryPoint]
    epochs: list[EpochRow]
    snapshots: list[int] = Field(description="training steps with saved weights (&snapshot=STEP)")
    metrics: Metrics | None
    card: dict[str, Any] | None = Field(
        None,
        description="for a model trained on your own data set: the data set, its classes and examples per class, "
        "how it was trained (from scratch, or fine-tuned from which model with which layers frozen), and its "
        "accuracy per class on the held-out examples",
    )
    pictures_note: str | None = Field(
        None, description="why its data set's pictures are not shown to you (they are its owner's); null if they are"
    )


class ModelSummary(BaseModel):
    id: str = Field(examples=["lenet"], description="a model id, or the share id of a model shared with you")
    name: str = Field(examples=["LeNet"])
    kind: Literal["shipped", "trained", "edited", "imported"]
    origin: Origin = Field(description=ORIGIN_WORDS)
    group: Literal["shipped", "yours", "lecturer", "shared"] = Field(
        description="where the model picker lists it (lecturer: published to a class you are in)"
    )
    base: str | None = Field(
        None, description="the model a copy, an edit or a fine-tune was made from (an edit's: open it to undo the edit)"
    )
    dataset: str | None = Field(examples=["digits"], description="null for a model imported without one")
    status: JobStatus
    test_accuracy: float | None = Field(examples=[0.98875])
    parameters: int | None = Field(None, examples=[63802])
    created: float | None


class ImportResponse(BaseModel):
    id: str = Field(description="the imported model's id in your workspace (?model=ID on every page)")
    name: str
    spec: dict[str, Any] = Field(description="the network as convscope runs it")
    labels: list[str]
    parameters: int
    dataset: str | None
    preprocess: Literal["digit", "picture", "none"]
    test_accuracy: float | None = Field(description="on the data set's test pictures, when one was given")
    report: list[str] = Field(
        description="what each node became, and what was folded or dropped",
        examples=[["BatchNormalization '/bn1' after conv1 folded into conv1's weights"]],
    )
    check_logits: list[list[float]] = Field(
        description="the engine's logits for three fixed inputs (black, grey 0.5, seeded noise), to compare"
    )
    preparation: dict[str, Any] = Field(
        description="how the app's 0..1 pictures are prepared first: the model's input_range, then "
        "(x - mean) / std a channel (a first layer named preparation when not plain)",
        examples=[{"input_range": "0..1", "mean": [0.1307], "std": [0.3081]}],
    )
    outputs: Literal["softmax", "binary", "independent"] = Field(
        description="softmax: probabilities adding up to 1; binary: one sigmoid score read as no/yes; "
        "independent: a sigmoid a class, not adding up to 1"
    )
    file_input: dict[str, Any] = Field(
        description="how the file itself takes pictures (layout NCHW or NHWC, dtype, a fixed batch or null)",
        examples=[{"layout": "NHWC", "dtype": "float32", "batch": None}],
    )


class ShareResponse(BaseModel):
    share_id: str = Field(description="unguessable; anyone holding it may use the model read-only")
    model: str
    url: str = Field(examples=["/?model=sAbC..."])
    train_url: str = Field(examples=["/train?model=sAbC..."])
    travels: str = Field(description="what the link gives its holder, and what stays yours (your pictures)")


class CopyResponse(BaseModel):
    id: str = Field(description="the copy's id in your workspace")
    name: str
    copied_from: str


class WorkspaceCreated(BaseModel):
    id: str = Field(examples=["w3f9a1c2b7d4e8a01"])
    token: str = Field(description="send as `Authorization: Bearer <token>`; shown only this once")


class WorkspaceLimits(BaseModel):
    """Each per-workspace resource's cap (the rows of ``quotas``)."""

    running_jobs: int
    jobs: int
    models: int
    bytes: int
    edits_per_hour: int
    job_bytes: int
    streams: int
    datasets: int
    classes: int
    entries_per_challenge: int


class QuotaRow(BaseModel):
    name: str = Field(examples=["datasets"])
    words: str = Field(examples=["own data sets"])
    limit: int
    used: int | None = Field(description="null where it is not counted in the store (streams: per process)")


class WorkspaceView(BaseModel):
    id: str
    name: str
    models: list[ModelSummary] = Field(description="the workspace's own models, newest first")
    datasets: list[DatasetSummary] = Field(description="its own data sets")
    running: int
    queued: int
    bytes: int = Field(description="what its models, snapshots and events take in the store")
    limits: WorkspaceLimits
    quotas: list[QuotaRow] = Field(description="every per-workspace resource: its limit and how many are used")


class CancelResponse(BaseModel):
    id: str
    status: JobStatus
    cancel_requested: bool


class LayerError(BaseModel):
    index: int = Field(description="position in the spec's layers list", examples=[6])
    number: int = Field(description="index + 1, as a page numbers its rows", examples=[7])
    name: str | None = Field(examples=["conv3"])
    reason: str = Field(examples=["a 5x5 kernel does not fit a 2x2 input: (2 + 2*0 - 1*(5-1) - 1)/1 + 1 = -2"])


class DesignError(BaseModel):
    detail: str = Field(
        examples=["layer 7 (conv3): a 5x5 kernel does not fit a 2x2 input: (2 + 2*0 - 1*(5-1) - 1)/1 + 1 = -2"]
    )
    layer: LayerError | None = Field(description="the layer at fault, when one is")


class SpecCheckResponse(BaseModel):
    valid: bool = Field(examples=[False])
    layers: list[LayerDescription] = Field(description="the input, then each named layer that could be worked out")
    parameters: int = Field(examples=[2572])
    error: DesignError | None
    training_defaults: dict[str, Any] = Field(
        description="how a job on this data set trains when the request leaves epochs, batch size and augmentation "
        "out: {size, examples, epochs, batch_size, learning_rate, augment, words}"
    )


class DatasetImages(BaseModel):
    dataset: str = Field(examples=["fashion"])
    split: str = Field(examples=["test"])
    size: int = Field(description="pictures in the split", examples=[2000])
    classes: list[str]
    indices: list[int]
    labels: list[int]
    images: list[list[list[int]]] = Field(description="28x28 values 0..255 each, white on black")


class DatasetLabels(BaseModel):
    dataset: str = Field(examples=["digits"])
    split: str = Field(examples=["test"])
    classes: list[str]
    labels: list[int]
