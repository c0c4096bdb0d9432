"""Layers on flat units: the fully connected (linear) layer, the flatten before it, and dropout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from engine import channels_last
from engine.kinds.base import REQUIRED, Field, LayerKind, Needs, Run, Shape, Where, as_int, as_number, register
from engine.layers import dropout_mask, linear, linear_backward

if TYPE_CHECKING:
    from engine.spec import LayerPlan


@register
class Linear(LayerKind):
    type = "linear"
    prefix = "fc"
    fields = {"units": REQUIRED}
    suggested = {"units": 10}
    words = "a fully connected layer: every unit a weighted sum of every input, plus a bias"
    draw = "fc"
    has_weights = True

    def configure(self, config: dict[str, Any], shapes: Sequence[Shape], where: Where) -> Shape:
        if len(shapes[0]) != 1:
            raise where.error(
                f"a linear layer needs a flat input but gets a {'x'.join(map(str, shapes[0]))} volume: "
                "add a flatten layer before it"
            )
        config["units"] = as_int(config["units"], "units", where, 1)
        return (config["units"],)

    def parameter_shapes(self, plan: LayerPlan) -> dict[str, Shape]:
        return {"weight": (plan.output_shape[0], plan.input_shape[0]), "bias": (plan.output_shape[0],)}

    def multiply_adds(self, plan: LayerPlan) -> int:
        return plan.input_shape[0] * plan.output_shape[0]

    def parameter_formula(self, plan: LayerPlan) -> str:
        out, inp = plan.output_shape[0], plan.input_shape[0]
        return f"{out} × ({inp} + 1) = {out * (inp + 1)}"

    def size_formula(self, plan: LayerPlan) -> tuple[str | None, bool]:
        return "dense: every input to every unit", True

    def receptive(self, plan: LayerPlan, fields: Sequence[Field], whole: tuple[int, int]) -> Field:
        return Field(whole, whole, (0, 0))

    def summary(self, config: dict[str, Any]) -> str:
        return f"{config.get('units')} units"

    def brief(self, config: dict[str, Any]) -> str:
        return f"fc {config['units']}"

    def forward(
        self, plan: LayerPlan, xs: Sequence[np.ndarray], params: dict[str, np.ndarray], run: Run
    ) -> tuple[np.ndarray, Any]:
        return linear(xs[0], params[f"{plan.name}.weight"], params[f"{plan.name}.bias"]), xs[0]

    def backward(
        self,
        plan: LayerPlan,
        grad: np.ndarray,
        cache: Any,
        params: dict[str, np.ndarray],
        grads: dict[str, np.ndarray],
        needs: Needs,
    ) -> list[np.ndarray | None]:
        weight = params[f"{plan.name}.weight"]
        if not needs.params:
            return [np.asarray(grad @ weight) if needs.inputs[0] else None]
        grad_x, grads[f"{plan.name}.weight"], grads[f"{plan.name}.bias"] = linear_backward(grad, cache, weight)
        return [grad_x]

    def to_onnx(self, graph: Any, plan: LayerPlan, params: dict[str, np.ndarray], inputs: list[str]) -> str:
        weight = graph.constant(f"{plan.name}.weight", params[f"{plan.name}.weight"])
        bias = graph.constant(f"{plan.name}.bias", params[f"{plan.name}.bias"])
        return str(graph.node("Gemm", plan.name, [inputs[0], weight, bias], transB=1))

    def torch_module(self, plan: LayerPlan) -> str:
        return f"nn.Linear({plan.input_shape[0]}, {plan.config['units']})"


@register
class Flatten(LayerKind):
    type = "flatten"
    words = "flatten: the maps laid out as one row of numbers, channel after channel, for a linear layer"
    keeps_flat = True

    def configure(self, config: dict[str, Any], shapes: Sequence[Shape], where: Where) -> Shape:
        if len(shapes[0]) == 1:
            raise where.error("the input is already flat")
        return (int(np.prod(shapes[0])),)

    def receptive(self, plan: LayerPlan, fields: Sequence[Field], whole: tuple[int, int]) -> Field:
        return Field(whole, whole, (0, 0))

    def forward(
        self, plan: LayerPlan, xs: Sequence[np.ndarray], params: dict[str, np.ndarray], run: Run
    ) -> tuple[np.ndarray, Any]:
        x = xs[0]  # in PyTorch's (C, H, W) order, as the next layer's weights expect
        maps = channels_last.to_channels_first(x) if x.ndim == 4 else x
        return maps.reshape(len(x), -1), x.shape

    def backward(
        self,
        plan: LayerPlan,
        grad: np.ndarray,
        cache: Any,
        params: dict[str, np.ndarray],
        grads: dict[str, np.ndarray],
        needs: Needs,
    ) -> list[np.ndarray | None]:
        if len(cache) != 4:
            return [grad.reshape(cache)]
        n, h, w, c = cache
        return [channels_last.to_channels_last(grad.reshape(n, c, h, w))]

    def to_onnx(self, graph: Any, plan: LayerPlan, params: dict[str, np.ndarray], inputs: list[str]) -> str:
        return str(graph.node("Flatten", plan.name, inputs, axis=1))

    def torch_call(self, plan: LayerPlan, module: str | None, args: Sequence[str]) -> str:
        return f"torch.flatten({args[0]}, 1)"


@register
class Dropout(LayerKind):
    type = "dropout"
    fields = {"rate": 0.5}
    words = "dropout: while training, each unit is zeroed at random (and the rest scaled up); at use, nothing"

    def configure(self, config: dict[str, Any], shapes: Sequence[Shape], where: Where) -> Shape:
        config["rate"] = as_number(config["rate"], "rate", where, 0, 1, open_high=True)
        return shapes[0]

    def summary(self, config: dict[str, Any]) -> str:
        return f"rate {config.get('rate')}"

    def annotate(self, row: dict[str, Any], plan: LayerPlan) -> None:
        row["dropout"] = plan.config["rate"]

    def forward(
        self, plan: LayerPlan, xs: Sequence[np.ndarray], params: dict[str, np.ndarray], run: Run
    ) -> tuple[np.ndarray, Any]:
        x, rate = xs[0], plan.config["rate"]
        if run.rng is None or rate == 0:
            return x, None
        if x.ndim == 4:  # drawn in (N, C, H, W) order, so a seed drops the same units in either layout
            nchw = (x.shape[0], x.shape[3], x.shape[1], x.shape[2])
            mask = channels_last.to_channels_last(dropout_mask(nchw, rate, run.rng, x.dtype.type))
        else:
            mask = dropout_mask(x.shape, rate, run.rng, x.dtype.type)
        return x * mask, mask

    def backward(
        self,
        plan: LayerPlan,
        grad: np.ndarray,
        cache: Any,
        params: dict[str, np.ndarray],
        grads: dict[str, np.ndarray],
        needs: Needs,
    ) -> list[np.ndarray | None]:
        return [grad if cache is None else grad * cache]

    def to_onnx(self, graph: Any, plan: LayerPlan, params: dict[str, np.ndarray], inputs: list[str]) -> str:
        return inputs[0]  # nothing at inference

    def torch_call(self, plan: LayerPlan, module: str | None, args: Sequence[str]) -> str:
        return f"nn.functional.dropout({args[0]}, {plan.config['rate']}, self.training)"
