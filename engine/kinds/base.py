"""What every layer type is: one class owning its fields, shapes, parameters, memory, forward and backward
passes, words, ONNX and PyTorch forms. The planner (:mod:`engine.spec`), the network, the memory
accounting, the exporters and the pages read these; no module switches on a type's name.

A layer type is a :class:`LayerKind` subclass registered with :func:`register`; its instance is shared
(it holds no state). Arrays between layers are channels-last: maps (N, H, W, C), flat units (N, D).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from engine._checks import pair
from engine.errors import SpecError

if TYPE_CHECKING:
    from engine.spec import LayerPlan

Shape = tuple[int, ...]
REQUIRED = object()  # marks a field a spec must give
# No size in a spec may pass this: it keeps a typo (or a hostile number) from reaching an allocation.
MAX_SIZE = 65536


@dataclass(frozen=True)
class Where:
    """The layer a spec error is about: its position in the spec and its name (or type)."""

    index: int
    name: str

    def error(self, message: str) -> SpecError:
        return SpecError(message, index=self.index, name=self.name)


@dataclass(frozen=True)
class Field:
    """Where one unit of a layer looks on the input: ``size`` cells, the first unit's top-left at
    ``start`` (negative inside the padding), and neighbouring units ``step`` cells apart."""

    size: tuple[int, int]
    step: tuple[int, int]
    start: tuple[int, int]

    def box(self, i: int, j: int, input_hw: tuple[int, int]) -> tuple[int, int, int, int]:
        """Unit (i, j)'s field as [y0, x0, y1, x1) clipped to the input."""
        y0, x0 = self.start[0] + i * self.step[0], self.start[1] + j * self.step[1]
        return (
            max(y0, 0),
            max(x0, 0),
            min(y0 + self.size[0], input_hw[0]),
            min(x0 + self.size[1], input_hw[1]),
        )


@dataclass
class Run:
    """How a forward pass runs. ``training``: batch statistics and, with ``rng``, dropout (a training step);
    ``keep``: keep what the backward pass needs; ``state``: the parameters whose running statistics a
    training pass moves (the network's own, updated in place); ``sync`` and ``rank``: this pass is slice
    ``rank`` of a batch whose slices run on threads and meet at every BatchNorm."""

    training: bool = False
    rng: np.random.Generator | None = None
    keep: bool = False
    state: dict[str, np.ndarray] | None = None
    sync: Any = None  # an engine.norm.AllReduce when the batch is split across threads (synchronised BatchNorm)
    rank: int = 0  # this slice's place among them
    owns_input: bool = False  # nothing else reads this layer's input: it may write its output over it


@dataclass(frozen=True)
class Needs:
    """What a backward pass must give: each input's gradient (``inputs``), and the layer's parameter
    gradients (``params``; false for a frozen layer)."""

    inputs: tuple[bool, ...]
    params: bool = True


def short(value: Any) -> str:
    """A value as an error message quotes it (a huge number or a long list cut short)."""
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**12 else "a very large number"
    return text if len(text) <= 40 else text[:37] + "..."


def as_int(value: Any, what: str, where: Where, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise where.error(f"{what} must be a whole number, got {short(value)}")
    if not minimum <= value <= MAX_SIZE:
        raise where.error(f"{what} must be between {minimum} and {MAX_SIZE}, got {short(value)}")
    return int(value)


def as_pair(value: Any, what: str, where: Where, minimum: int) -> tuple[int, int]:
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != 2:
            raise where.error(f"{what} must be an int or [height, width], got {short(value)}")
        return (as_int(value[0], what, where, minimum), as_int(value[1], what, where, minimum))
    single = as_int(value, what, where, minimum)
    return (single, single)


def as_number(value: Any, what: str, where: Where, low: float, high: float, *, open_high: bool = False) -> float:
    """A plain number in [low, high] (or [low, high) with ``open_high``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise where.error(f"{what} must be a number, got {short(value)}")
    number = float(value)
    inside = low <= number < high if open_high else low <= number <= high
    if not np.isfinite(number) or not inside:
        bound = f"[{low:g}, {high:g})" if open_high else f"{low:g} to {high:g}"
        raise where.error(f"{what} must be a number in {bound}, got {short(value)}")
    return number


def pair_or_int(value: tuple[int, int]) -> int | list[int]:
    return value[0] if value[0] == value[1] else list(value)


def volume(shape: Shape, what: str, where: Where) -> tuple[int, int, int]:
    """The input's (C, H, W), or the error a layer that needs maps gives for a flat input."""
    if len(shape) != 3:
        raise where.error(
            f"a {what} layer needs a volume (channels x height x width) but its input is flat "
            f"({shape[0]} values): put it before the flatten"
        )
    return (shape[0], shape[1], shape[2])


class LayerKind:
    """One layer type. Subclasses set the class attributes and override what differs from these defaults
    (an activation-like layer that keeps its input's shape and has no parameters)."""

    type: ClassVar[str] = ""
    # a layer of its own, named prefix + number (conv1, bn2) unless the spec names it; None: unnamed, it
    # belongs to the layer before it (an activation, dropout, flatten), which reports after it
    prefix: ClassVar[str | None] = None
    fields: ClassVar[dict[str, Any]] = {}
    suggested: ClassVar[dict[str, Any]] = {}  # what a new layer starts with where a field is required
    words: ClassVar[str] = ""  # the type in a sentence, for the pages
    merges: ClassVar[bool] = False  # takes two or more inputs ("inputs"), not one
    draw: ClassVar[str] = "map"  # how the pages draw its output: conv, pool, fc, norm, merge, pad, map
    per_picture: ClassVar[bool] = True  # a training pass treats each picture on its own (BatchNorm does not)
    has_weights: ClassVar[bool] = False  # conv and linear: what fine-tuning may freeze, edits may change
    activation: ClassVar[bool] = False  # reported as its layer's activation in the shape table
    keeps_flat: ClassVar[bool] = False  # flatten: not reported on its own (its layer's maps are)
    normalises: ClassVar[bool] = False  # BatchNorm: seen through when choosing a weight's initial scale
    takes_max: ClassVar[bool] = False  # max pooling: an activation before it that never decreases may swap
    swaps_in_training: ClassVar[bool] = False  # ReLU: swapped with a max pool in a training step too
    onnx_op: ClassVar[str] = ""  # the one ONNX op this layer is, where there is one (the activations)

    # -- the spec ---------------------------------------------------------------------------------------

    def configure(self, config: dict[str, Any], shapes: Sequence[Shape], where: Where) -> Shape:
        """Checks and normalises ``config`` (in place) for inputs of ``shapes``; returns the output shape."""
        return shapes[0]

    def parameter_shapes(self, plan: LayerPlan) -> dict[str, Shape]:
        """Trained parameters by suffix (``weight``, ``bias``), in PyTorch's shapes."""
        return {}

    def buffer_shapes(self, plan: LayerPlan) -> dict[str, Shape]:
        """Kept, untrained state by suffix (BatchNorm's running statistics), saved with the weights."""
        return {}

    def initial(self, plan: LayerPlan, rng: np.random.Generator, before_relu: bool) -> dict[str, np.ndarray]:
        """Fresh parameters: He-normal weights before a ReLU (Glorot-normal otherwise), zero biases."""
        params = {}
        for suffix, shape in self.parameter_shapes(plan).items():
            if suffix == "bias":
                params[suffix] = np.zeros(shape, np.float32)
                continue
            fan_in = int(np.prod(shape[1:]))
            fan_out = shape[0] * int(np.prod(shape[2:]))
            std = np.sqrt(2 / fan_in) if before_relu else np.sqrt(2 / (fan_in + fan_out))
            params[suffix] = (rng.standard_normal(shape) * std).astype(np.float32)
        return params

    def multiply_adds(self, plan: LayerPlan) -> int:
        """Multiply-adds of one picture's forward pass (what a training step costs, up to a constant)."""
        return 0

    def scratch_bytes(self, plan: LayerPlan) -> int:
        """Working memory per picture beyond the output (a conv's im2col columns), in bytes."""
        return 0

    def size_formula(self, plan: LayerPlan) -> tuple[str | None, bool]:
        """The output-size formula with this layer's numbers, and whether its windows tile the input."""
        return None, True

    def parameter_formula(self, plan: LayerPlan) -> str | None:
        return None

    def receptive(self, plan: LayerPlan, fields: Sequence[Field], whole: tuple[int, int]) -> Field:
        """This layer's receptive field on the input, from its inputs' (``whole``: the input's size)."""
        return fields[0]

    def window(self, plan: LayerPlan) -> dict[str, list[int]] | None:
        """The cells of its (first) input a cell of its output reads, as a window: kernel, stride, padding
        and dilation (h, w). One cell by default (an activation, a BatchNorm, a merge); None for flat units."""
        if len(plan.output_shape) != 3:
            return None
        return {"kernel": [1, 1], "stride": [1, 1], "padding": [0, 0], "dilation": [1, 1]}

    def commutes_with_max(self, plan: LayerPlan) -> bool:
        """Whether ``max(f(a), f(b)) = f(max(a, b))``: it may swap with a max pool after it."""
        return False

    def summary(self, config: dict[str, Any]) -> str:
        """Its settings in a few words (the design page's collapsed row)."""
        return ""

    def brief(self, config: dict[str, Any]) -> str | None:
        """The layer in a design written on one line ("conv 8@3x3 → maxpool → fc 10"); None: left out."""
        return None

    def annotate(self, row: dict[str, Any], plan: LayerPlan) -> None:
        """What an unnamed layer of this type adds to its named layer's row in the shape table."""

    # -- the passes ----------------------------------------------------------------------------------

    def forward(
        self, plan: LayerPlan, xs: Sequence[np.ndarray], params: dict[str, np.ndarray], run: Run
    ) -> tuple[np.ndarray, Any]:
        """The output of inputs ``xs`` and, when ``run.keep``, what :meth:`backward` needs."""
        raise NotImplementedError

    def backward(
        self,
        plan: LayerPlan,
        grad: np.ndarray,
        cache: Any,
        params: dict[str, np.ndarray],
        grads: dict[str, np.ndarray],
        needs: Needs,
    ) -> list[np.ndarray | None]:
        """Each input's gradient from the output's (None where ``needs`` says it is not wanted); parameter
        gradients go into ``grads`` as ``name.suffix``."""
        raise NotImplementedError

    # -- other forms ---------------------------------------------------------------------------------

    def to_onnx(self, graph: Any, plan: LayerPlan, params: dict[str, np.ndarray], inputs: list[str]) -> str:
        """Adds the ONNX nodes that compute this layer to ``graph``; returns the output value's name."""
        raise NotImplementedError

    def from_onnx(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """The layer's fields from the attributes of its ONNX op (:attr:`onnx_op`)."""
        return {}

    def torch_module(self, plan: LayerPlan) -> str | None:
        """The ``torch.nn`` module that holds this layer, as source (None: a function call does)."""
        return None

    def torch_call(self, plan: LayerPlan, module: str | None, args: Sequence[str]) -> str:
        """The forward pass's expression for this layer, from its module (``self.conv1``) and inputs."""
        return f"{module}({args[0]})"


def window_args(config: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """A window layer's kernel, stride, padding and dilation as (h, w) pairs, from its checked config."""
    return {
        "kernel": pair(config["kernel_size"]),
        "stride": pair(config["stride"]),
        "padding": pair(config.get("padding", 0)),
        "dilation": pair(config.get("dilation", 1)),
    }


KINDS: dict[str, LayerKind] = {}


def register(cls: type[LayerKind]) -> type[LayerKind]:
    """Adds a layer type to the registry (a class decorator)."""
    KINDS[cls.type] = cls()
    return cls


def kind_of(layer_type: Any, where: Where | None = None) -> LayerKind:
    """The registered layer type, or the spec error that names the types there are."""
    kind = KINDS.get(layer_type) if isinstance(layer_type, str) else None
    if kind is None:
        message = f"unknown layer type {short(layer_type)}; types are {', '.join(KINDS)}"
        raise where.error(message) if where else SpecError(message)
    return kind
