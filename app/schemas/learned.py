"""Request and response models of the "what did it learn" routes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas import ONE_STROKE, PredictRequest


class TopPicture(BaseModel):
    index: int = Field(description="the picture's index in the model's data set's test split", examples=[292])
    label: int = Field(examples=[7])
    activation: float = Field(examples=[2.99])
    position: list[int] = Field(description="[i, j] in the unit's map where it fires most", examples=[[4, 3]])
    box: list[int] = Field(
        description="[y0, x0, y1, x1) of its receptive field on the input", examples=[[8, 6, 22, 20]]
    )
    patch: list | None = Field(
        description="the input inside the box (H x W, 0..1; C x H x W for a colour input); null where the "
        "pictures are withheld (see pictures_note)"
    )
    picture: list | None = Field(
        description="the whole input the network saw (H x W, 0..1; C x H x W in colour); null where withheld"
    )


class UnitCard(BaseModel):
    model: str = Field(examples=["lenet"])
    layer: str = Field(examples=["conv2"])
    unit: int = Field(examples=[5])
    kind: Literal["conv", "pool", "linear", "norm", "merge", "pad", "map"] = Field(
        description="linear for units, else how the page draws the maps (conv, pool, norm, merge, pad, map)"
    )
    label: str | None = Field(None, description="for the last layer, the class this unit stands for")
    top: list[TopPicture]
    synthetic: list = Field(description="a picture made to excite the unit, in the input's shape (C x H x W)")
    synthetic_activation: float
    mean_activation: float | None = Field(
        description="the unit's mean activation over the test pictures (null without a data set)"
    )
    note: str | None = Field(None, description="why the top pictures are missing (a model without a data set)")
    pictures_note: str | None = Field(
        None, description="why the pictures are left out: they belong to the owner of the data set it was trained on"
    )
    weights: dict[str, Any] | None = Field(description="the unit's filter (C x KH x KW) or weights, and its bias")


class EmbeddingMap(BaseModel):
    model: str
    method: Literal["pca"] = "pca"
    layer: str = Field(description="the layer whose features are mapped (the one before the last)")
    explained: list[float] = Field(description="the share of the features' variance along each axis")
    points: list[list[float]] = Field(description="[x, y] per test picture, in order")
    labels: list[int]
    classes: list[str]
    dataset: str | None = Field(None, description="the data set whose test pictures these are")
    pictures_note: str | None = Field(
        None, description="why GET /api/datasets/{dataset}/images will not show you these pictures (not yours)"
    )


class NeighboursRequest(PredictRequest):
    model_config = ConfigDict(json_schema_extra={"examples": [{"pixels": ONE_STROKE, "k": 6}]})

    k: int = Field(6, ge=1, le=50, description="how many nearest training pictures")


class Neighbour(BaseModel):
    index: int = Field(description="in the training split")
    label: int
    distance: float


class NeighboursResponse(BaseModel):
    model: str
    position: list[float] = Field(description="the input's [x, y] on the class map")
    neighbours: list[Neighbour]
    images: list | None = Field(description="the neighbours' pictures, 0..255; null where withheld")
    classes: list[str]
    pictures_note: str | None = Field(None, description="why the pictures are left out (not your data set's)")


class Edit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: Literal["zero", "set_filter", "scale"]
    layer: str = Field(max_length=64, examples=["conv1"])
    unit: int | None = Field(None, ge=0, le=100_000)
    kernel: list[list[float]] | None = Field(None, description="set_filter: the new KH x KW weights")
    factor: float | None = Field(None, ge=-100, le=100, allow_inf_nan=False)


class EditRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"edits": [{"op": "zero", "layer": "conv1", "unit": 2}]}]},
    )

    edits: list[Edit] = Field(min_length=1, max_length=32)
    name: str | None = Field(None, max_length=60)


class EditResponse(BaseModel):
    id: str = Field(description="the edited copy's model id (the original is unchanged)")
    base: str
    accuracy_before: float | None = Field(description="on the model's test pictures (null: it has no data set)")
    accuracy_after: float | None
    per_class_before: list[float] | None
    per_class_after: list[float] | None
