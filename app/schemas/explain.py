"""Request and response models of ``/api/explain`` and ``/api/adversarial``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas import ONE_STROKE, PredictRequest

Method = Literal["saliency", "smoothgrad", "integrated_gradients", "gradcam", "occlusion"]
METHODS: tuple[Method, ...] = ("saliency", "smoothgrad", "integrated_gradients", "gradcam", "occlusion")


class ExplainRequest(PredictRequest):
    """The input as for predict (exactly one of ``pixels``, ``image``, ``frame``), and what to explain."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"pixels": ONE_STROKE, "methods": ["saliency", "gradcam"]}]}
    )

    target: int | None = Field(None, ge=0, le=9999, description="the class to explain (default: the top guess)")
    methods: list[Method] = Field(list(METHODS), min_length=1, max_length=5, description="default: all five")
    noise: float = Field(0.15, ge=0, le=1, description="SmoothGrad's noise, a share of the input's range")
    samples: int = Field(25, ge=1, le=64, description="SmoothGrad's noisy copies")
    steps: int = Field(128, ge=4, le=256, description="integrated gradients' steps along the path")
    patch: int = Field(6, ge=1, le=32, description="occlusion's square patch side")
    stride: int = Field(2, ge=1, le=32, description="occlusion's step between patches")
    fill: Literal["black", "grey"] = Field("black", description="what occlusion covers with")


class Completeness(BaseModel):
    sum: float = Field(description="the attributions added up", examples=[12.31])
    logit_difference: float = Field(description="logit(input) - logit(baseline)", examples=[12.34])


class IntegratedGradientsOut(BaseModel):
    attribution: list = Field(description="C x H x W, raw signed values")
    baseline: Literal["black"] = "black"
    steps: int = Field(examples=[128])
    completeness: Completeness


class GradCamOut(BaseModel):
    map: list[list[float]] = Field(description="at the conv layer's size, non-negative")
    upsampled: list[list[float]] = Field(description="bilinearly resized to the input's height x width")


class OcclusionOut(BaseModel):
    patch: int = Field(examples=[6])
    stride: int = Field(examples=[2])
    fill: str = Field(examples=["black"])
    map: list[list[float]] = Field(description="probability without the patch minus with it, per position")


class ExplainResponse(BaseModel):
    model: str = Field(examples=["lenet"])
    labels: list[str]
    input: list = Field(description="the frame the network saw, C x H x W")
    target: int = Field(examples=[7])
    probabilities: list[float]
    saliency: list | None = Field(None, description="d logit_target / d input, C x H x W")
    smoothgrad: list | None = Field(None, description="the mean saliency over noisy copies, C x H x W")
    integrated_gradients: IntegratedGradientsOut | None = None
    gradcam: dict[str, GradCamOut] | None = Field(None, description="one entry per conv layer")
    occlusion: OcclusionOut | None = None


class AdversarialRequest(PredictRequest):
    """The input as for predict, and the attack."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"pixels": ONE_STROKE, "method": "pgd", "epsilon": 0.2, "steps": 20}]}
    )

    method: Literal["fgsm", "pgd"] = "pgd"
    epsilon: float = Field(0.1, ge=0, le=1, allow_inf_nan=False, description="largest change of any pixel")
    steps: int = Field(20, ge=1, le=100, description="PGD's steps (FGSM takes one)")
    target: int | None = Field(None, ge=0, le=9999, description="a class to push towards; default: any other")


class Verdict(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    class_: int = Field(alias="class", examples=[7])
    label: str = Field(examples=["7"])
    probabilities: list[float]


class LayerChange(BaseModel):
    name: str = Field(examples=["conv2"])
    relative_change: float = Field(description="||adversarial - original|| / ||original|| of the layer's output")
    map: list = Field(description="|difference| averaged over channels (h x w), or per unit for dense layers")


class AdversarialResponse(BaseModel):
    model: str = Field(examples=["lenet"])
    labels: list[str]
    input: list = Field(description="the original frame, C x H x W")
    adversarial: list = Field(description="the changed frame, C x H x W, in [0, 1]")
    perturbation: list = Field(description="adversarial - input, C x H x W")
    original: Verdict
    result: Verdict
    flipped: bool
    linf: float = Field(description="largest change of any pixel (<= epsilon)")
    l2: float
    steps_taken: int
    layers: list[LayerChange] = Field(description="how far each layer's output moved, first to last")
