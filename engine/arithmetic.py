"""Convolution arithmetic explained: output sizes, whether a stride fits, parameter counts.

    output = (N + 2P - D(F-1) - 1) / S + 1            convolution (and pooling with P=0, D=1)
    output = (N - 1) S - 2P + D(F-1) + 1               transposed convolution

Frameworks round the first down; the lecture's point is that when it is not a
whole number the filter does not tile the input, and some border is never seen.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import EngineError


@dataclass(frozen=True)
class Arithmetic:
    exact: float
    fits: bool
    output_size: int
    formula: str
    message: str
    effective_kernel_size: int
    uncovered: int
    parameters: int | None = None
    output_volume: tuple[int, int, int] | None = None


def number_text(x: float) -> str:
    """``6`` for a whole number, ``6.50`` otherwise: how the formulas print a result."""
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}"


def size_formula(n: int, k: int, s: int, p: int, d: int) -> tuple[str, float]:
    """``(N + 2P - D(F-1) - 1)/S + 1`` with the numbers filled in, and its exact (unrounded) value."""
    exact = (n + 2 * p - d * (k - 1) - 1) / s + 1
    return f"({n} + 2*{p} - {d}*({k}-1) - 1)/{s} + 1 = {number_text(round(exact, 2))}", exact


def parameter_count(kernel_size: int, in_channels: int, filters: int) -> int:
    """Each filter has F*F*C weights and one bias: ``(F*F*C + 1) * K``."""
    return (kernel_size * kernel_size * in_channels + 1) * filters


def explain(
    input_size: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    *,
    transposed: bool = False,
    in_channels: int | None = None,
    filters: int | None = None,
    pooling: bool = False,
    axis: str | None = None,
) -> Arithmetic:
    """The output size along one axis with its formula written out, and a sentence saying what it means.
    ``pooling``: the window is a pooling window, which the stepper slides without padding, so the advice
    offers only what can be changed there (window and stride). ``axis`` ("height" or "width") words the
    sentence for that axis alone, as a rectangular layer needs ("the filter's width 2 ... an input width
    of 7"); without it the layer is square ("a 3x3 filter ... a 5x5 input")."""
    n, f, s, p, d = input_size, kernel_size, stride, padding, dilation
    span = d * (f - 1) + 1
    parameters = parameter_count(f, in_channels, filters) if in_channels and filters else None
    thing = "window" if pooling else "filter"
    kernel_words = (f"the {thing}'s {axis} {f}" if axis else f"a {f}x{f} {thing}") + (
        f" with dilation {d}" if d > 1 else ""
    )
    words = _AxisWords(n, axis)

    if transposed:
        return _transposed(n, f, s, p, d, kernel_words, parameters, filters)
    reach = n + 2 * p - span  # how far the window's top-left corner can travel
    formula, exact = size_formula(n, f, s, p, d)
    if reach < 0:
        message = (
            f"{kernel_words} spans {span} cells, more than the {n + 2 * p} cells of "
            f"{words.input} with padding {p}: it does not fit at all; "
            + ("use a smaller window" if pooling else "use a smaller filter or more padding")
        )
        return Arithmetic(round(exact, 4), False, 0, formula, message, span, 0, parameters, None)
    size, uncovered = reach // s + 1, reach % s
    volume = (filters, size, size) if filters else None
    if uncovered == 0:
        message = f"{kernel_words} with stride {s} and padding {p} fits {words.input}: {words.output(size)}"
        return Arithmetic(round(exact, 4), True, size, formula, message, span, 0, parameters, volume)
    message = _misfit(n, s, p, span, reach, exact, size, kernel_words, pooling, words)
    return Arithmetic(round(exact, 4), False, size, formula, message, span, uncovered, parameters, volume)


def _transposed(
    n: int, f: int, s: int, p: int, d: int, kernel_words: str, parameters: int | None, filters: int | None
) -> Arithmetic:
    """``(N - 1)S - 2P + D(F-1) + 1``: each input cell scatters the kernel onto the output."""
    size = (n - 1) * s - 2 * p + d * (f - 1) + 1
    formula = f"({n} - 1)*{s} - 2*{p} + {d}*({f}-1) + 1 = {size}"
    fits = size >= 1
    message = (
        f"each of the {n}x{n} inputs scatters {kernel_words} onto the output, {s} cells apart: "
        f"the output is {size}x{size}"
        if fits
        else f"padding {p} crops away the whole {size + 2 * p}x{size + 2 * p} output; use less padding"
    )
    volume = (filters, size, size) if filters and fits else None
    return Arithmetic(float(size), fits, max(size, 0), formula, message, d * (f - 1) + 1, 0, parameters, volume)


@dataclass(frozen=True)
class _AxisWords:
    """How a sentence names the input and the output: a square's "5x5 input", or one axis's "input width of 7"."""

    n: int
    axis: str | None

    @property
    def input(self) -> str:
        return f"an input {self.axis} of {self.n}" if self.axis else f"a {self.n}x{self.n} input"

    def output(self, size: int) -> str:
        return f"the output {self.axis} is {size}" if self.axis else f"the output is {size}x{size}"

    @property
    def lines(self) -> str:
        return {"height": "row", "width": "column"}.get(self.axis or "", "row{s} and column")


def _misfit(
    n: int,
    s: int,
    p: int,
    span: int,
    reach: int,
    exact: float,
    size: int,
    kernel_words: str,
    pooling: bool,
    words: _AxisWords,
) -> str:
    """Why a stride does not tile the input, and the strides or padding that would."""
    uncovered = reach % s
    strides = [t for t in range(1, s + 3) if reach % t == 0 and t != s]
    paddings = [] if pooling else [q for q in range(p + 1, p + s + 1) if (n + 2 * q - span) % s == 0][:1]
    hints = []
    if strides:
        hints.append("stride " + " or ".join(map(str, strides[:3])))
    if paddings:
        hints.append(f"padding {paddings[0]}")
    plural = "s" if uncovered > 1 else ""
    lines = words.lines.replace("{s}", plural) + plural
    verb = "are" if plural or not words.axis else "is"  # "row and column" are two things even when one each
    message = (
        f"{kernel_words} with stride {s} does not fit {words.input}: {number_text(round(exact, 2))} is not a "
        f"whole number, so the last {uncovered} {lines} of the padded input {verb} never "
        f"covered (frameworks silently round down to {size})"
    )
    return message + ("; try " + ", or ".join(hints) if hints else "")


# -- a whole layer: rectangular sizes, groups, the PyTorch line ---------------------------------------


@dataclass(frozen=True)
class LayerArithmetic:
    """A layer whose sizes may differ along height and width: each axis explained, the output shape, the
    parameter count with groups, and the same layer written for PyTorch."""

    height: Arithmetic
    width: Arithmetic
    fits: bool
    output_shape: tuple[int, int]
    parameters: int | None
    parameter_formula: str | None
    pytorch: str
    pytorch_output: str | None


def grouped_parameters(kernel: tuple[int, int], in_channels: int, filters: int, groups: int = 1) -> tuple[int, str]:
    """``filters × (channels/groups · KH · KW + 1)``: each filter sees only its group's channels.
    ``groups = channels`` is a depthwise convolution (one filter per channel)."""
    if in_channels % groups or filters % groups:
        raise EngineError(
            f"groups: {groups} must divide both the input channels ({in_channels}) and the filters ({filters}): "
            "each group takes channels/groups inputs and makes filters/groups outputs"
        )
    per_filter = in_channels // groups * kernel[0] * kernel[1]
    count = filters * (per_filter + 1)
    return count, f"{filters} × ({kernel[0]}·{kernel[1]}·{in_channels // groups} + 1) = {count}"


def _torch_size(pair: tuple[int, int]) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"({pair[0]}, {pair[1]})"


def pytorch_layer(
    mode: str,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    in_channels: int,
    filters: int,
    groups: int = 1,
) -> str:
    """The ``torch.nn`` layer with these settings, written as a person would type it (defaults left out)."""
    if mode in ("max", "avg"):
        name = "nn.MaxPool2d" if mode == "max" else "nn.AvgPool2d"
        args = [f"kernel_size={_torch_size(kernel)}", f"stride={_torch_size(stride)}"]
        return f"{name}({', '.join(args)})"
    name = "nn.ConvTranspose2d" if mode == "transposed" else "nn.Conv2d"
    args = [str(in_channels), str(filters), f"kernel_size={_torch_size(kernel)}"]
    args += [f"stride={_torch_size(stride)}", f"padding={_torch_size(padding)}"]
    if dilation != (1, 1):
        args.append(f"dilation={_torch_size(dilation)}")
    if groups != 1:
        args.append(f"groups={groups}")
    return f"{name}({', '.join(args)})"


def explain_layer(
    input_size: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int] = (1, 1),
    padding: tuple[int, int] = (0, 0),
    dilation: tuple[int, int] = (1, 1),
    *,
    mode: str = "conv",
    in_channels: int | None = None,
    filters: int | None = None,
    groups: int = 1,
) -> LayerArithmetic:
    """Both axes of a layer explained (conv, max/avg pooling, transposed), with groups and the PyTorch line.
    Pooling has no padding or dilation here and keeps the channels."""
    transposed, pooling = mode == "transposed", mode in ("max", "avg")
    square = len({input_size[0], input_size[1]}) == 1 and all(v[0] == v[1] for v in (kernel, stride, padding, dilation))
    axes = [
        explain(
            input_size[a],
            kernel[a],
            stride[a],
            padding[a],
            dilation[a],
            transposed=transposed,
            pooling=pooling,
            axis=None if square else ("height", "width")[a],
        )
        for a in (0, 1)
    ]
    fits = all(axis.fits for axis in axes)
    shape = (axes[0].output_size, axes[1].output_size)
    parameters = formula = None
    channels, outputs = in_channels or 1, filters or 1
    if mode in ("max", "avg"):
        parameters, formula, outputs = 0, "pooling has no parameters", channels
    elif in_channels and filters:
        parameters, formula = grouped_parameters(kernel, in_channels, filters, groups)
    elif groups != 1:
        raise EngineError("groups needs in_channels and filters")
    line = pytorch_layer(mode, kernel, stride, padding, dilation, channels, outputs, groups)
    torch_shape = f"(N, {outputs}, {shape[0]}, {shape[1]})" if min(shape) >= 1 else None
    return LayerArithmetic(axes[0], axes[1], fits, shape, parameters, formula, line, torch_shape)
