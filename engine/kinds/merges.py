"""Where paths meet: ``add`` (a residual connection: ResNet's skip path added to the block's output) and
``concat`` (maps stacked along the channels, as Inception and DenseNet do). Both take ``inputs``, two or
more earlier layers by name (``"input"`` for the network's input)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.kinds.base import Field, LayerKind, Needs, Run, Shape, Where, register

if TYPE_CHECKING:
    from engine.spec import LayerPlan


def _shape_words(shape: Shape) -> str:
    return "x".join(map(str, shape))


def union(fields: Sequence[Field]) -> Field:
    """The smallest field that holds each input's: what a merged unit depends on."""
    step = fields[0].step
    start = (min(f.start[0] for f in fields), min(f.start[1] for f in fields))
    ends = (max(f.start[0] + f.size[0] for f in fields), max(f.start[1] + f.size[1] for f in fields))
    return Field((ends[0] - start[0], ends[1] - start[1]), step, start)


@register
class Add(LayerKind):
    type = "add"
    prefix = "add"
    merges = True
    words = "add: the inputs' maps added number by number (a residual block's skip connection)"
    draw = "merge"

    def configure(self, config: dict[str, Any], shapes: Sequence[Shape], where: Where) -> Shape:
        first = shapes[0]
        for shape in shapes[1:]:
            if shape != first:
                raise where.error(_mismatch(first, shape))
        return first

    def size_formula(self, plan: LayerPlan) -> tuple[str | None, bool]:
        return " + ".join(plan.input_names) + " (number by number)", True

    def brief(self, config: dict[str, Any]) -> str:
        return "add"

    def receptive(self, plan: LayerPlan, fields: Sequence[Field], whole: tuple[int, int]) -> Field:
        return union(fields)

    def forward(
        self, plan: LayerPlan, xs: Sequence[np.ndarray], params: dict[str, np.ndarray], run: Run
    ) -> tuple[np.ndarray, Any]:
        total = xs[0] + xs[1]
        for x in xs[2:]:
            total += x
        return total, None

    def backward(
        self,
        plan: LayerPlan,
        grad: np.ndarray,
        cache: Any,
        params: dict[str, np.ndarray],
        grads: dict[str, np.ndarray],
        needs: Needs,
    ) -> list[np.ndarray | None]:
        return [grad if needed else None for needed in needs.inputs]

    def to_onnx(self, graph: Any, plan: LayerPlan, params: dict[str, np.ndarray], inputs: list[str]) -> str:
        out = graph.node("Add", plan.name, inputs[:2])
        for more in inputs[2:]:
            out = graph.node("Add", plan.name, [out, more])
        return str(out)

    def torch_call(self, plan: LayerPlan, module: str | None, args: Sequence[str]) -> str:
        return " + ".join(args)


def _mismatch(first: Shape, other: Shape) -> str:
    """The error for two inputs of an add whose shapes differ, with the usual way to make them agree."""
    words = f"add needs inputs of one shape, got {_shape_words(first)} and {_shape_words(other)}"
    if len(first) == len(other) == 3:
        big, small = max(first[1], other[1]), min(first[1], other[1])
        stride = max(1, big // max(small, 1))
        return (
            f"{words}: put a 1x1 conv on the shortcut to match them "
            f'({{"type": "conv", "filters": {max(first[0], other[0])}, "kernel_size": 1, "stride": {stride}}})'
        )
    return words


@register
class Concat(LayerKind):
    type = "concat"
    prefix = "cat"
    merges = True
    words = "concatenate: the inputs' maps stacked into one volume, channel after channel"
    draw = "merge"

    def configure(self, config: dict[str, Any], shapes: Sequence[Shape], where: Where) -> Shape:
        first = shapes[0]
        for shape in shapes[1:]:
            if len(shape) != len(first) or shape[1:] != first[1:]:
                raise where.error(
                    f"concat stacks channels, so its inputs' other sizes must agree; got {_shape_words(first)} "
                    f"and {_shape_words(shape)}"
                )
        return (sum(shape[0] for shape in shapes), *first[1:])

    def brief(self, config: dict[str, Any]) -> str:
        return "concat"

    def size_formula(self, plan: LayerPlan) -> tuple[str | None, bool]:
        channels = [str(shape[0]) for shape in plan.input_shapes]
        return f"channels {' + '.join(channels)} = {plan.output_shape[0]}", True

    def receptive(self, plan: LayerPlan, fields: Sequence[Field], whole: tuple[int, int]) -> Field:
        return union(fields)

    def forward(
        self, plan: LayerPlan, xs: Sequence[np.ndarray], params: dict[str, np.ndarray], run: Run
    ) -> tuple[np.ndarray, Any]:
        return np.concatenate(xs, axis=-1), [x.shape[-1] for x in xs]

    def backward(
        self,
        plan: LayerPlan,
        grad: np.ndarray,
        cache: Any,
        params: dict[str, np.ndarray],
        grads: dict[str, np.ndarray],
        needs: Needs,
    ) -> list[np.ndarray | None]:
        bounds = np.cumsum([0, *cache])
        return [
            np.ascontiguousarray(grad[..., a:b]) if needed else None
            for a, b, needed in zip(bounds[:-1], bounds[1:], needs.inputs)
        ]

    def to_onnx(self, graph: Any, plan: LayerPlan, params: dict[str, np.ndarray], inputs: list[str]) -> str:
        return str(graph.node("Concat", plan.name, inputs, axis=1))

    def torch_call(self, plan: LayerPlan, module: str | None, args: Sequence[str]) -> str:
        return f"torch.cat([{', '.join(args)}], 1)"
