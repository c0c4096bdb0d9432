"""Activations: a function applied to every number on its own, with no parameters. Unnamed, an activation
belongs to the layer before it (the lecture's "CONV + ReLU" box), which reports its output after it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from engine import layers as ops
from engine.errors import EngineError
from engine.kinds.base import LayerKind, Needs, Run, Shape, Where, as_number, register

if TYPE_CHECKING:
    from engine.spec import LayerPlan

Function = Callable[..., np.ndarray]


class Activation(LayerKind):
    """``y = f(x)`` elementwise. ``from_output``: the backward pass reads the output (ReLU, tanh, sigmoid,
    whose derivative is a function of it), else the input. ``settings`` maps a field to the function's
    keyword argument."""

    activation = True
    function: ClassVar[Function]
    derivative: ClassVar[Function]
    from_output: ClassVar[bool] = False
    monotonic: ClassVar[bool] = True  # never decreasing: it may swap with a max pool after it
    torch_name: ClassVar[str] = ""
    writes_over: ClassVar[bool] = False  # its function takes ``out=``: it may overwrite an input no one else reads

    def _kwargs(self, config: dict[str, Any]) -> dict[str, float]:
        return {key: config[key] for key in self.fields}

    def configure(self, config: dict[str, Any], shapes: Sequence[Shape], where: Where) -> Shape:
        for key in self.fields:
            config[key] = as_number(config[key], key, where, -1e3, 1e3)
        return shapes[0]

    def commutes_with_max(self, plan: LayerPlan) -> bool:
        return self.monotonic

    def summary(self, config: dict[str, Any]) -> str:
        return ", ".join(f"{key} {config.get(key)}" for key in self.fields)

    def annotate(self, row: dict[str, Any], plan: LayerPlan) -> None:
        row["activation"] = plan.type

    def forward(
        self, plan: LayerPlan, xs: Sequence[np.ndarray], params: dict[str, np.ndarray], run: Run
    ) -> tuple[np.ndarray, Any]:
        if self.writes_over and run.owns_input and not run.keep:  # saves a fresh array a layer
            return type(self).function(xs[0], out=xs[0], **self._kwargs(plan.config)), None
        y = type(self).function(xs[0], **self._kwargs(plan.config))
        return y, (y if self.from_output else xs[0]) if run.keep else None

    def backward(
        self,
        plan: LayerPlan,
        grad: np.ndarray,
        cache: Any,
        params: dict[str, np.ndarray],
        grads: dict[str, np.ndarray],
        needs: Needs,
    ) -> list[np.ndarray | None]:
        return [type(self).derivative(grad, cache, **self._kwargs(plan.config))]

    def to_onnx(self, graph: Any, plan: LayerPlan, params: dict[str, np.ndarray], inputs: list[str]) -> str:
        return str(graph.node(self.onnx_op, plan.name, inputs, **self._kwargs(plan.config)))

    def from_onnx(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """The layer's fields from its ONNX node's attributes (the same names by default); an
        :class:`EngineError` for constants that make it another function."""
        return {key: float(attrs[key]) for key in self.fields if key in attrs}

    def torch_call(self, plan: LayerPlan, module: str | None, args: Sequence[str]) -> str:
        settings = "".join(f", {value}" for value in self._kwargs(plan.config).values())
        return f"{self.torch_name}({args[0]}{settings})"


@register
class ReLU(Activation):
    type = "relu"
    words = "ReLU: negative numbers become 0, the rest pass"
    function, derivative, from_output = ops.relu, staticmethod(lambda grad, y: np.asarray(grad * (y > 0))), True
    onnx_op, torch_name = "Relu", "torch.relu"
    swaps_in_training = True
    writes_over = True


@register
class Tanh(Activation):
    type = "tanh"
    words = "tanh: squashes every number into (-1, 1)"
    function, derivative, from_output = ops.tanh, ops.tanh_backward, True
    onnx_op, torch_name = "Tanh", "torch.tanh"


@register
class Sigmoid(Activation):
    type = "sigmoid"
    words = "sigmoid: squashes every number into (0, 1)"
    function, derivative, from_output = ops.sigmoid, ops.sigmoid_backward, True
    onnx_op, torch_name = "Sigmoid", "torch.sigmoid"


@register
class LeakyReLU(Activation):
    type = "leakyrelu"
    fields = {"slope": 0.01}
    words = "leaky ReLU: negative numbers are multiplied by a small slope instead of zeroed"
    function, derivative = ops.leaky_relu, ops.leaky_relu_backward
    onnx_op, torch_name = "LeakyRelu", "nn.functional.leaky_relu"

    def commutes_with_max(self, plan: LayerPlan) -> bool:
        return bool(plan.config["slope"] >= 0)

    def to_onnx(self, graph: Any, plan: LayerPlan, params: dict[str, np.ndarray], inputs: list[str]) -> str:
        return str(graph.node("LeakyRelu", plan.name, inputs, alpha=plan.config["slope"]))

    def from_onnx(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return {"slope": float(attrs.get("alpha", 0.01))}


@register
class ELU(Activation):
    type = "elu"
    fields = {"alpha": 1.0}
    words = "ELU: negative numbers curve smoothly down towards -alpha"
    function, derivative = ops.elu, ops.elu_backward
    onnx_op, torch_name = "Elu", "nn.functional.elu"

    def commutes_with_max(self, plan: LayerPlan) -> bool:
        return bool(plan.config["alpha"] >= 0)


def _check_constants(name: str, attrs: dict[str, Any], onnx_defaults: dict[str, float], ours: dict[str, float]) -> None:
    """An ONNX node's constants (its defaults where it gives none) must be the engine's (PyTorch's)."""
    for key, value in ours.items():
        given = float(attrs.get(key, onnx_defaults[key]))
        if not np.isclose(given, value, rtol=1e-5):
            raise EngineError(f"{key} {given:g}; convscope's {name} has {value:.6g}")


@register
class SELU(Activation):
    type = "selu"
    words = "SELU: a scaled ELU whose constants keep activations near mean 0 and variance 1"
    function, derivative = ops.selu, ops.selu_backward
    onnx_op, torch_name = "Selu", "nn.functional.selu"

    def from_onnx(self, attrs: dict[str, Any]) -> dict[str, Any]:
        constants = {"alpha": ops.SELU_ALPHA, "gamma": ops.SELU_SCALE}
        _check_constants("selu", attrs, constants, constants)
        return {}


@register
class ReLU6(Activation):
    type = "relu6"
    words = "ReLU6: a ReLU capped at 6"
    function, derivative = ops.relu6, ops.relu6_backward
    onnx_op, torch_name = "Clip", "nn.functional.relu6"
    writes_over = True

    def to_onnx(self, graph: Any, plan: LayerPlan, params: dict[str, np.ndarray], inputs: list[str]) -> str:
        low = graph.constant(f"{plan.name}.low", np.array(0, np.float32))
        high = graph.constant(f"{plan.name}.high", np.array(6, np.float32))
        return str(graph.node("Clip", plan.name, [inputs[0], low, high]))


@register
class HardSigmoid(Activation):
    type = "hardsigmoid"
    words = "hard sigmoid: a straight ramp from 0 at -3 to 1 at 3"
    function, derivative = ops.hardsigmoid, ops.hardsigmoid_backward
    onnx_op, torch_name = "HardSigmoid", "nn.functional.hardsigmoid"

    def to_onnx(self, graph: Any, plan: LayerPlan, params: dict[str, np.ndarray], inputs: list[str]) -> str:
        return str(graph.node("HardSigmoid", plan.name, inputs, alpha=1 / 6, beta=0.5))

    def from_onnx(self, attrs: dict[str, Any]) -> dict[str, Any]:
        _check_constants("hardsigmoid", attrs, {"alpha": 0.2, "beta": 0.5}, {"alpha": 1 / 6, "beta": 0.5})
        return {}


@register
class HardSwish(Activation):
    type = "hardswish"
    words = "hard swish: x times the hard sigmoid of x (dips below 0 between -3 and 0)"
    function, derivative = ops.hardswish, ops.hardswish_backward
    monotonic = False
    onnx_op, torch_name = "HardSwish", "nn.functional.hardswish"
