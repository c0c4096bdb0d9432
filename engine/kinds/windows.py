"""Layers that slide a window over maps: convolution (grouped and depthwise too), max and average pooling,
global average pooling, and padding.

Shapes along the way follow ``OH = floor((H + 2P - D(KH-1) - 1) / S) + 1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from engine import channels_last
from engine._checks import effective_size, pair
from engine.arithmetic import size_formula
from engine.channels_last import ConvGeometry
from engine.grouped import grouped_conv2d, grouped_conv2d_backward
from engine.kinds.base import (
    REQUIRED,
    Field,
    LayerKind,
    Needs,
    Run,
    Shape,
    Where,
    as_int,
    as_pair,
    pair_or_int,
    register,
    short,
    volume,
    window_args,
)
from engine.padding import PADDING_MODES, pad_sides, pad_sides_backward, partial_conv_ratio

if TYPE_CHECKING:
    from engine.spec import LayerPlan

FLOAT_BYTES = 4
COPYING_MODES = ("reflect", "replicate", "circular")
ONNX_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge"}


def _words(value: tuple[int, int]) -> str:
    return f"{value[0]}x{value[1]}"


def window_output(config: dict[str, Any], shape: Shape, where: Where, channels: int | None, what: str) -> Shape:
    """A window layer's output volume: kernel, stride (default: the kernel), padding and dilation checked and
    normalised in ``config``; ``channels`` out (None: as many as in)."""
    c, h, w = volume(shape, what, where)
    kernel = as_pair(config["kernel_size"], "kernel_size", where, 1)
    stride = as_pair(config["stride"] if config.get("stride") is not None else list(kernel), "stride", where, 1)
    padding = as_pair(config.get("padding", 0), "padding", where, 0)
    dilation = as_pair(config.get("dilation", 1), "dilation", where, 1)
    config.update(kernel_size=pair_or_int(kernel), stride=pair_or_int(stride))
    if "padding" in config:
        config.update(padding=pair_or_int(padding), dilation=pair_or_int(dilation))
    sizes = []
    for a in (0, 1):
        formula, exact = size_formula((h, w)[a], kernel[a], stride[a], padding[a], dilation[a])
        if exact < 1:
            span = effective_size(kernel[a], dilation[a])
            said = f"a {_words(kernel)} kernel" + (
                f" (spanning {span} with dilation {dilation[a]})" if span > kernel[a] else ""
            )
            raise where.error(f"{said} does not fit a {h}x{w} input: {formula}")
        sizes.append(int(exact // 1))
    return (channels if channels is not None else c, sizes[0], sizes[1])


def window_formula(plan: LayerPlan) -> tuple[str | None, bool]:
    """The output-size formula with this layer's numbers, and whether the windows tile the input exactly."""
    args = window_args(plan.config)
    _, h, w = plan.input_shape
    parts = [
        size_formula((h, w)[a], args["kernel"][a], args["stride"][a], args["padding"][a], args["dilation"][a])
        for a in (0, 1)
    ]
    fits = all(float(exact).is_integer() for _, exact in parts)
    if parts[0][0] == parts[1][0]:
        return parts[0][0], fits
    return f"height {parts[0][0]}; width {parts[1][0]}", fits


def window_of(plan: LayerPlan) -> dict[str, list[int]]:
    """A window layer's kernel, stride, padding and dilation, as the pages read them."""
    return {key: list(value) for key, value in window_args(plan.config).items()}


def window_field(plan: LayerPlan, field: Field) -> Field:
    """``r += D(K-1)*step``, ``step *= S``, ``start += (-P)*step`` along each axis."""
    args = window_args(plan.config)
    size, step, start = list(field.size), list(field.step), list(field.start)
    for a in (0, 1):
        start[a] -= args["padding"][a] * step[a]
        size[a] += (effective_size(args["kernel"][a], args["dilation"][a]) - 1) * step[a]
        step[a] *= args["stride"][a]
    return Field((size[0], size[1]), (step[0], step[1]), (start[0], start[1]))


def check_padding_mode(
    mode: Any, size: tuple[int, int], padding: Sequence[int], where: Where, modes: Sequence[str]
) -> None:
    """A padding mode the layer knows, and a padding it can make on a map of ``size`` (each side's count)."""
    if mode not in modes:
        raise where.error(f"padding_mode must be one of {', '.join(modes)}, got {short(mode)}")
    for axis, n, p in (("height", size[0], max(padding[:2])), ("width", size[1], max(padding[2:]))):
        if mode == "reflect" and p >= n:
            raise where.error(f"reflect padding {p} needs an input {axis} above {p}, got {n}")
        if mode == "circular" and p > n:
            raise where.error(f"circular padding {p} needs an input {axis} of at least {p}, got {n}")


@register
class Conv(LayerKind):
    type = "conv"
    prefix = "conv"
    fields = {
        "filters": REQUIRED,
        "kernel_size": REQUIRED,
        "stride": 1,
        "padding": 0,
        "dilation": 1,
        "padding_mode": "zeros",
        "groups": 1,
    }
    suggested = {"filters": 8, "kernel_size": 3}
    words = "a convolution: each filter slides over its input channels and adds up the weighted neighbours"
    draw = "conv"
    has_weights = True

    def configure(self, config: dict[str, Any], shapes: Sequence[Shape], where: Where) -> Shape:
        c, h, w = volume(shapes[0], "conv", where)
        filters = as_int(config["filters"], "filters", where, 1)
        groups = as_int(config["groups"], "groups", where, 1)
        if c % groups or filters % groups:
            raise where.error(
                f"groups {groups} must divide both the input channels ({c}) and the filters ({filters}): each group "
                f"takes channels/groups inputs and makes filters/groups outputs (groups = {c} is depthwise)"
            )
        padding = as_pair(config["padding"], "padding", where, 0)
        check_padding_mode(config["padding_mode"], (h, w), (*padding, *padding), where, PADDING_MODES)
        config.update(filters=filters, groups=groups)
        return window_output(config, shapes[0], where, filters, "conv")

    def parameter_shapes(self, plan: LayerPlan) -> dict[str, Shape]:
        kh, kw = pair(plan.config["kernel_size"])
        f = plan.output_shape[0]
        return {"weight": (f, plan.input_shape[0] // plan.config["groups"], kh, kw), "bias": (f,)}

    def multiply_adds(self, plan: LayerPlan) -> int:
        f, oh, ow = plan.output_shape
        _, cg, kh, kw = self.parameter_shapes(plan)["weight"]
        return f * cg * kh * kw * oh * ow

    def scratch_bytes(self, plan: LayerPlan) -> int:
        kh, kw = pair(plan.config["kernel_size"])
        return plan.input_shape[0] * kh * kw * int(np.prod(plan.output_shape[1:])) * FLOAT_BYTES

    def size_formula(self, plan: LayerPlan) -> tuple[str | None, bool]:
        return window_formula(plan)

    def parameter_formula(self, plan: LayerPlan) -> str:
        f, cg, kh, kw = self.parameter_shapes(plan)["weight"]
        return f"{f} × ({kh}·{kw}·{cg} + 1) = {f * (kh * kw * cg + 1)}"

    def receptive(self, plan: LayerPlan, fields: Sequence[Field], whole: tuple[int, int]) -> Field:
        return window_field(plan, fields[0])

    def window(self, plan: LayerPlan) -> dict[str, list[int]]:
        return window_of(plan)

    def brief(self, config: dict[str, Any]) -> str:
        k = pair(config["kernel_size"])
        return f"conv {config['filters']}@{k[0]}x{k[1]}" + (
            f"/{config['groups']}" if config.get("groups", 1) != 1 else ""
        )

    def summary(self, config: dict[str, Any]) -> str:
        words = f"{config.get('filters')} filters {config.get('kernel_size')}"
        if config.get("groups", 1) != 1:
            words += f", groups {config['groups']}"
        return words

    # -- passes: copying modes pad first (then a valid convolution); partial re-weights after ----------

    def _geometry(self, plan: LayerPlan) -> ConvGeometry:
        args = window_args(plan.config)
        padded_here = plan.config["padding_mode"] in ("zeros", "partial")
        return ConvGeometry(
            args["kernel"], args["stride"], args["padding"] if padded_here else (0, 0), args["dilation"]
        )

    def _ratio(self, plan: LayerPlan, dtype: np.dtype) -> np.ndarray:
        args = window_args(plan.config)
        hw = (plan.input_shape[1], plan.input_shape[2])
        ratio = partial_conv_ratio(hw, args["kernel"], args["stride"], args["padding"], args["dilation"])
        return ratio[None, :, :, None].astype(dtype)

    def forward(
        self, plan: LayerPlan, xs: Sequence[np.ndarray], params: dict[str, np.ndarray], run: Run
    ) -> tuple[np.ndarray, Any]:
        mode, groups = plan.config["padding_mode"], plan.config["groups"]
        w, b = params[f"{plan.name}.weight"], params[f"{plan.name}.bias"]
        x = xs[0]
        if mode in COPYING_MODES:
            ph, pw = pair(plan.config["padding"])
            x = pad_sides(x, (ph, ph, pw, pw), mode)
        geometry, bias = self._geometry(plan), (None if mode == "partial" else b)
        if groups == 1:
            y = channels_last.conv2d(x, channels_last.flat_weights(w), bias, geometry)
        else:
            y = grouped_conv2d(x, w, bias, geometry, groups)
        if mode == "partial":
            y *= self._ratio(plan, y.dtype)
            y += b
        return y, (x if run.keep else None)

    def backward(
        self,
        plan: LayerPlan,
        grad: np.ndarray,
        cache: Any,
        params: dict[str, np.ndarray],
        grads: dict[str, np.ndarray],
        needs: Needs,
    ) -> list[np.ndarray | None]:
        mode, groups = plan.config["padding_mode"], plan.config["groups"]
        w, geometry = params[f"{plan.name}.weight"], self._geometry(plan)
        grad_b = grad.reshape(-1, grad.shape[-1]).sum(axis=0) if needs.params else None
        if mode == "partial":
            grad = grad * self._ratio(plan, grad.dtype)
        if groups == 1:
            grad_x, flat_w, _ = channels_last.conv2d_backward(
                grad, cache, channels_last.flat_weights(w), geometry, needs.inputs[0], needs.params
            )
            grad_w = None
            if flat_w is not None:
                f, c, kh, kw = w.shape
                grad_w = np.ascontiguousarray(flat_w.reshape(kh, kw, c, f).transpose(3, 2, 0, 1))
        else:
            grad_x, grad_w, _ = grouped_conv2d_backward(grad, cache, w, geometry, groups, needs.inputs[0], needs.params)
        if needs.params and grad_w is not None and grad_b is not None:
            grads[f"{plan.name}.weight"], grads[f"{plan.name}.bias"] = grad_w, grad_b
        if grad_x is not None and mode in COPYING_MODES:
            ph, pw = pair(plan.config["padding"])
            grad_x = pad_sides_backward(grad_x, (ph, ph, pw, pw), mode)
        return [grad_x]

    # -- other forms ---------------------------------------------------------------------------------

    def to_onnx(self, graph: Any, plan: LayerPlan, params: dict[str, np.ndarray], inputs: list[str]) -> str:
        cfg, name = plan.config, plan.name
        args = window_args(cfg)
        (ph, pw), mode = args["padding"], cfg["padding_mode"]
        source = inputs[0]
        pads = [ph, pw, ph, pw]
        if mode in ("reflect", "replicate") and (ph or pw):
            widths = graph.constant(f"{name}.pads", np.array([0, 0, ph, pw, 0, 0, ph, pw], np.int64))
            source = graph.node("Pad", name, [source, widths], mode=ONNX_PAD_MODES[mode])
            pads = [0, 0, 0, 0]
        elif mode == "circular" and (ph or pw):
            source = graph.wrap(name, source, (ph, ph, pw, pw), plan.input_shape)
            pads = [0, 0, 0, 0]
        window = {
            "strides": list(args["stride"]),
            "dilations": list(args["dilation"]),
            "pads": pads,
            "kernel_shape": list(args["kernel"]),
            "group": cfg["groups"],
        }
        weight = graph.constant(f"{name}.weight", params[f"{name}.weight"])
        if mode != "partial":
            bias = graph.constant(f"{name}.bias", params[f"{name}.bias"])
            return str(graph.node("Conv", name, [source, weight, bias], **window))
        out = graph.node("Conv", name, [source, weight], **window)
        ratio = self._ratio(plan, np.dtype(np.float32))[0, :, :, 0]
        out = graph.node("Mul", name, [out, graph.constant(f"{name}.partial_ratio", ratio[None, None])])
        bias_map = graph.constant(f"{name}.bias", params[f"{name}.bias"].reshape(1, -1, 1, 1))
        return str(graph.node("Add", name, [out, bias_map]))

    def torch_module(self, plan: LayerPlan) -> str:
        cfg = plan.config
        args = window_args(cfg)
        mode = cfg["padding_mode"]
        cls = "PartialConv2d" if mode == "partial" else "nn.Conv2d"
        text = (
            f"{cls}({plan.input_shape[0]}, {cfg['filters']}, kernel_size={args['kernel']}, stride={args['stride']}, "
            f"padding={args['padding']}, dilation={args['dilation']}"
        )
        if cfg["groups"] != 1:
            text += f", groups={cfg['groups']}"
        if mode not in ("zeros", "partial"):
            text += f", padding_mode={mode!r}"
        return text + ")"


class Pool(LayerKind):
    """Max or average pooling: each channel on its own, no parameters."""

    prefix = "pool"
    fields = {"kernel_size": REQUIRED, "stride": None}
    suggested = {"kernel_size": 2}
    draw = "pool"
    onnx_op = ""
    torch_class = ""

    def configure(self, config: dict[str, Any], shapes: Sequence[Shape], where: Where) -> Shape:
        return window_output(config, shapes[0], where, None, self.type)

    def size_formula(self, plan: LayerPlan) -> tuple[str | None, bool]:
        return window_formula(plan)

    def receptive(self, plan: LayerPlan, fields: Sequence[Field], whole: tuple[int, int]) -> Field:
        return window_field(plan, fields[0])

    def window(self, plan: LayerPlan) -> dict[str, list[int]]:
        return window_of(plan)

    def summary(self, config: dict[str, Any]) -> str:
        return f"{config.get('kernel_size')} window, stride {config.get('stride') or config.get('kernel_size')}"

    def brief(self, config: dict[str, Any]) -> str:
        return self.type

    def to_onnx(self, graph: Any, plan: LayerPlan, params: dict[str, np.ndarray], inputs: list[str]) -> str:
        args = window_args(plan.config)
        attrs = {"kernel_shape": list(args["kernel"]), "strides": list(args["stride"])}
        return str(graph.node(self.onnx_op, plan.name, inputs, **attrs))

    def torch_module(self, plan: LayerPlan) -> str:
        args = window_args(plan.config)
        return f"{self.torch_class}(kernel_size={args['kernel']}, stride={args['stride']})"


@register
class MaxPool(Pool):
    type = "maxpool"
    words = "max pooling: each window's largest value, channel by channel"
    takes_max = True
    onnx_op, torch_class = "MaxPool", "nn.MaxPool2d"

    def forward(
        self, plan: LayerPlan, xs: Sequence[np.ndarray], params: dict[str, np.ndarray], run: Run
    ) -> tuple[np.ndarray, Any]:
        args = window_args(plan.config)
        out, winners = channels_last.max_pool2d(xs[0], args["kernel"], args["stride"], run.keep)
        return out, (xs[0].shape, winners)

    def backward(
        self,
        plan: LayerPlan,
        grad: np.ndarray,
        cache: Any,
        params: dict[str, np.ndarray],
        grads: dict[str, np.ndarray],
        needs: Needs,
    ) -> list[np.ndarray | None]:
        args = window_args(plan.config)
        x_shape, winners = cache
        return [channels_last.max_pool2d_backward(grad, winners, x_shape, args["kernel"], args["stride"])]


@register
class AvgPool(Pool):
    type = "avgpool"
    words = "average pooling: each window's mean, channel by channel"
    onnx_op, torch_class = "AveragePool", "nn.AvgPool2d"

    def forward(
        self, plan: LayerPlan, xs: Sequence[np.ndarray], params: dict[str, np.ndarray], run: Run
    ) -> tuple[np.ndarray, Any]:
        args = window_args(plan.config)
        return channels_last.avg_pool2d(xs[0], args["kernel"], args["stride"]), xs[0].shape

    def backward(
        self,
        plan: LayerPlan,
        grad: np.ndarray,
        cache: Any,
        params: dict[str, np.ndarray],
        grads: dict[str, np.ndarray],
        needs: Needs,
    ) -> list[np.ndarray | None]:
        args = window_args(plan.config)
        return [channels_last.avg_pool2d_backward(grad, cache, args["kernel"], args["stride"])]


@register
class GlobalAvgPool(LayerKind):
    type = "globalavgpool"
    prefix = "gap"
    words = "global average pooling: each channel's mean over its whole map, one number a channel"
    draw = "pool"

    def configure(self, config: dict[str, Any], shapes: Sequence[Shape], where: Where) -> Shape:
        c, _, _ = volume(shapes[0], "globalavgpool", where)
        return (c, 1, 1)

    def size_formula(self, plan: LayerPlan) -> tuple[str | None, bool]:
        _, h, w = plan.input_shape
        return f"each {h}x{w} map → its mean (1x1)", True

    def brief(self, config: dict[str, Any]) -> str:
        return "global avgpool"

    def receptive(self, plan: LayerPlan, fields: Sequence[Field], whole: tuple[int, int]) -> Field:
        return Field(whole, whole, (0, 0))

    def window(self, plan: LayerPlan) -> dict[str, list[int]]:
        _, h, w = plan.input_shape  # the whole map
        return {"kernel": [h, w], "stride": [1, 1], "padding": [0, 0], "dilation": [1, 1]}

    def forward(
        self, plan: LayerPlan, xs: Sequence[np.ndarray], params: dict[str, np.ndarray], run: Run
    ) -> tuple[np.ndarray, Any]:
        return xs[0].mean(axis=(1, 2), keepdims=True, dtype=xs[0].dtype), xs[0].shape

    def backward(
        self,
        plan: LayerPlan,
        grad: np.ndarray,
        cache: Any,
        params: dict[str, np.ndarray],
        grads: dict[str, np.ndarray],
        needs: Needs,
    ) -> list[np.ndarray | None]:
        n, h, w, c = cache
        return [np.broadcast_to(grad / grad.dtype.type(h * w), (n, h, w, c)).copy()]

    def to_onnx(self, graph: Any, plan: LayerPlan, params: dict[str, np.ndarray], inputs: list[str]) -> str:
        return str(graph.node("GlobalAveragePool", plan.name, inputs))

    def torch_module(self, plan: LayerPlan) -> str:
        return "nn.AdaptiveAvgPool2d(1)"


@register
class Pad(LayerKind):
    type = "pad"
    prefix = "pad"
    fields = {"padding": REQUIRED, "padding_mode": "zeros"}
    suggested = {"padding": [0, 1, 0, 1]}
    words = "padding: a border added around each map, each side its own width (zeros or copies of the edge)"
    draw = "pad"

    def configure(self, config: dict[str, Any], shapes: Sequence[Shape], where: Where) -> Shape:
        c, h, w = volume(shapes[0], "pad", where)
        raw = config["padding"]
        if isinstance(raw, Sequence) and not isinstance(raw, str) and len(raw) == 4:
            sides = tuple(as_int(v, "padding", where, 0) for v in raw)
        elif isinstance(raw, Sequence) and not isinstance(raw, str):
            raise where.error(f"padding must be an int or [top, bottom, left, right], got {short(raw)}")
        else:
            sides = (as_int(raw, "padding", where, 0),) * 4
        check_padding_mode(config["padding_mode"], (h, w), sides, where, ("zeros", *COPYING_MODES))
        config["padding"] = list(sides)
        return (c, h + sides[0] + sides[1], w + sides[2] + sides[3])

    def size_formula(self, plan: LayerPlan) -> tuple[str | None, bool]:
        top, bottom, left, right = plan.config["padding"]
        _, h, w = plan.input_shape
        return f"{h} + {top} + {bottom} = {h + top + bottom}; {w} + {left} + {right} = {w + left + right}", True

    def receptive(self, plan: LayerPlan, fields: Sequence[Field], whole: tuple[int, int]) -> Field:
        field = fields[0]
        top, _, left, _ = plan.config["padding"]
        return Field(
            field.size, field.step, (field.start[0] - top * field.step[0], field.start[1] - left * field.step[1])
        )

    def summary(self, config: dict[str, Any]) -> str:
        return f"{config.get('padding')} {config.get('padding_mode', 'zeros')}"

    def window(self, plan: LayerPlan) -> dict[str, list[int]]:
        top, _, left, _ = plan.config["padding"]  # output cell (i, j) copies input cell (i - top, j - left)
        return {"kernel": [1, 1], "stride": [1, 1], "padding": [top, left], "dilation": [1, 1]}

    def forward(
        self, plan: LayerPlan, xs: Sequence[np.ndarray], params: dict[str, np.ndarray], run: Run
    ) -> tuple[np.ndarray, Any]:
        return pad_sides(xs[0], tuple(plan.config["padding"]), plan.config["padding_mode"]), None

    def backward(
        self,
        plan: LayerPlan,
        grad: np.ndarray,
        cache: Any,
        params: dict[str, np.ndarray],
        grads: dict[str, np.ndarray],
        needs: Needs,
    ) -> list[np.ndarray | None]:
        return [pad_sides_backward(grad, tuple(plan.config["padding"]), plan.config["padding_mode"])]

    def to_onnx(self, graph: Any, plan: LayerPlan, params: dict[str, np.ndarray], inputs: list[str]) -> str:
        top, bottom, left, right = plan.config["padding"]
        mode = plan.config["padding_mode"]
        if mode == "circular":
            return str(graph.wrap(plan.name, inputs[0], (top, bottom, left, right), plan.input_shape))
        widths = graph.constant(f"{plan.name}.pads", np.array([0, 0, top, left, 0, 0, bottom, right], np.int64))
        return str(graph.node("Pad", plan.name, [inputs[0], widths], mode=ONNX_PAD_MODES[mode]))

    def torch_call(self, plan: LayerPlan, module: str | None, args: Sequence[str]) -> str:
        top, bottom, left, right = plan.config["padding"]
        mode = {"zeros": "constant"}.get(plan.config["padding_mode"], plan.config["padding_mode"])
        return f"nn.functional.pad({args[0]}, ({left}, {right}, {top}, {bottom}), mode={mode!r})"
