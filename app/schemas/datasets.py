"""Data sets of your own: requests and answers."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, RootModel, field_validator, model_validator

from app.limits import limits
from app.schemas.names import plain_name as _plain
from engine.names import MAX_CLASS_NAME, plain_text


class DatasetCreate(BaseModel):
    name: str = Field(min_length=1, max_length=60, examples=["my symbols"])
    classes: list[str] = Field(min_length=2, max_length=100, examples=[["check", "cross", "circle"]])
    kind: Literal["digit", "picture"] = Field(
        "digit", description="digit: drawings prepared as MNIST's digits (1x28x28); picture: photos (3x32x32)"
    )
    input: list[int] | None = Field(None, description="[1, 28, 28] for digit, [3, 32, 32] for picture (implied)")

    _name = field_validator("name")(_plain)

    @field_validator("classes")
    @classmethod
    def _class_names(cls, value: list[str]) -> list[str]:
        names = [plain_text(v, MAX_CLASS_NAME) for v in value]
        if not all(names):
            raise ValueError("every class needs a name")
        return names

    @model_validator(mode="after")
    def _input_of_kind(self) -> DatasetCreate:
        wanted = [1, 28, 28] if self.kind == "digit" else [3, 32, 32]
        if self.input is not None and self.input != wanted:
            raise ValueError(f"a {self.kind} data set's input is {wanted}")
        return self


class Example(BaseModel):
    label: str | int = Field(
        description="the class's name, or its index in the data set's classes (0 for the first)", examples=["check", 0]
    )
    image: str | None = Field(None, description="a data URL (data:image/png;base64,...) or base64 picture")
    pixels: list[list[float]] | None = Field(None, description="a grayscale picture, rows of 0..255")

    @model_validator(mode="after")
    def _one_source(self) -> Example:
        if (self.image is None) == (self.pixels is None):
            raise ValueError("send exactly one of image or pixels")
        side = limits().pixels_max_side
        if self.pixels is not None and (len(self.pixels) > side or any(len(r) > side for r in self.pixels)):
            raise ValueError(f"pixels: at most {side}x{side}")
        if self.image is not None and len(self.image) > limits().max_body_bytes:
            raise ValueError("image: too large")
        return self


def within_batch(value: list[Example]) -> list[Example]:
    most = limits().dataset_batch_examples
    if len(value) > most:
        raise ValueError(f"at most {most} examples a request, got {len(value)}")
    return value


class ExamplesAdd(BaseModel):
    examples: list[Example] = Field(
        min_length=1, description="at most CONVSCOPE_DATASET_BATCH_EXAMPLES (100) a request"
    )

    @field_validator("examples")
    @classmethod
    def _batch(cls, value: list[Example]) -> list[Example]:
        return within_batch(value)


class ExampleList(RootModel[list[Example]]):
    """The same batch sent as a bare list: ``[{"label": "check", "image": ...}, ...]``."""

    root: list[Example] = Field(min_length=1)

    @field_validator("root")
    @classmethod
    def _batch(cls, value: list[Example]) -> list[Example]:
        return within_batch(value)


class ClassCounts(BaseModel):
    train: int
    test: int


class TrainingDefaults(BaseModel):
    size: Literal["small", "medium", "large"]
    examples: int = Field(description="training pictures (the held-out ones are not counted)")
    epochs: int
    batch_size: int
    learning_rate: float
    augment: bool
    words: str = Field(examples=["small data set: 20 epochs, batch 8, augmented"])


class DatasetFields(BaseModel):
    id: str
    name: str
    kind: Literal["digit", "picture"]
    input: list[int]
    classes: list[str]
    created: float
    counts: dict[str, ClassCounts] = Field(description="per class: examples for training, and held out for testing")
    training_defaults: TrainingDefaults = Field(
        description="how POST /api/models trains on it when the request leaves epochs, batch size and augmentation out"
    )


class DatasetSummary(DatasetFields):
    examples: int


class DatasetView(DatasetFields):
    min_per_class: int = Field(description="examples each class needs before the data set can train")
    examples: list[dict[str, Any]] = Field(
        description="every example: id, label (class index), class, split, thumbnail (a PNG data URL)"
    )


class DatasetList(BaseModel):
    datasets: list[DatasetSummary]
