"""Batch normalisation as a layer: per channel after a conv, per unit after a linear layer; its scale and
shift (``NAME.weight``, ``NAME.bias``) train, its running statistics (``NAME.running_mean``,
``NAME.running_var``) are kept with them. The arithmetic is :mod:`engine.norm`'s."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from engine import norm
from engine.kinds.base import LayerKind, Needs, Run, Shape, Where, as_number, register, short

if TYPE_CHECKING:
    from engine.spec import LayerPlan


@register
class BatchNorm(LayerKind):
    type = "batchnorm"
    prefix = "bn"
    fields = {"eps": norm.EPS, "momentum": norm.MOMENTUM}
    words = (
        "batch normalisation: each channel shifted and scaled to mean 0 and variance 1 (over the batch while "
        "training, by running averages after), then scaled and shifted by two learned numbers"
    )
    draw = "norm"
    normalises = True
    per_picture = False  # a training pass's statistics are the whole batch's

    def configure(self, config: dict[str, Any], shapes: Sequence[Shape], where: Where) -> Shape:
        config["eps"] = as_number(config["eps"], "eps", where, 1e-12, 1)
        config["momentum"] = as_number(config["momentum"], "momentum", where, 0, 1)
        return shapes[0]

    def parameter_shapes(self, plan: LayerPlan) -> dict[str, Shape]:
        c = plan.input_shape[0]
        return {"weight": (c,), "bias": (c,)}

    def buffer_shapes(self, plan: LayerPlan) -> dict[str, Shape]:
        c = plan.input_shape[0]
        return {"running_mean": (c,), "running_var": (c,)}

    def initial(self, plan: LayerPlan, rng: np.random.Generator, before_relu: bool) -> dict[str, np.ndarray]:
        c = plan.input_shape[0]
        ones, zeros = np.ones(c, np.float32), np.zeros(c, np.float32)
        return {"weight": ones, "bias": zeros, "running_mean": zeros.copy(), "running_var": ones.copy()}

    def multiply_adds(self, plan: LayerPlan) -> int:
        return int(np.prod(plan.output_shape))

    def parameter_formula(self, plan: LayerPlan) -> str:
        c = plan.input_shape[0]
        return f"{c} × 2 = {2 * c} (a scale and a shift a channel; the running mean and variance are kept, not trained)"

    def size_formula(self, plan: LayerPlan) -> tuple[str | None, bool]:
        return "y = γ·(x − mean) / √(var + ε) + β, channel by channel", True

    def summary(self, config: dict[str, Any]) -> str:
        return f"eps {config.get('eps')}, momentum {config.get('momentum')}"

    def brief(self, config: dict[str, Any]) -> str:
        return "bn"

    def _statistics(self, plan: LayerPlan, params: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        name = plan.name
        return (
            params[f"{name}.weight"],
            params[f"{name}.bias"],
            params[f"{name}.running_mean"],
            params[f"{name}.running_var"],
        )

    def forward(
        self, plan: LayerPlan, xs: Sequence[np.ndarray], params: dict[str, np.ndarray], run: Run
    ) -> tuple[np.ndarray, Any]:
        gamma, beta, mean, var = self._statistics(plan, params)
        eps = plan.config["eps"]
        if not run.training:
            return norm.batch_norm(xs[0], gamma, beta, mean, var, eps), xs[0]
        whole = None
        if run.sync is not None:  # a slice: the whole batch's statistics, from every slice's
            whole = norm.combined_moments(run.sync.gather(run.rank, norm.batch_moments(xs[0])))
        y, stats = norm.batch_norm_train(xs[0], gamma, beta, eps, whole)
        if run.state is not None and run.rank == 0:  # moved once, by the whole batch's statistics
            state_mean, state_var = run.state[f"{plan.name}.running_mean"], run.state[f"{plan.name}.running_var"]
            norm.update_running(state_mean, state_var, stats, plan.config["momentum"])
        return y, (stats, run.sync, run.rank)

    def backward(
        self,
        plan: LayerPlan,
        grad: np.ndarray,
        cache: Any,
        params: dict[str, np.ndarray],
        grads: dict[str, np.ndarray],
        needs: Needs,
    ) -> list[np.ndarray | None]:
        gamma, _, mean, var = self._statistics(plan, params)
        if isinstance(cache, tuple):  # a training pass
            stats, sync, rank = cache
            whole = None
            if sync is not None:
                parts = sync.gather(rank, norm.gradient_sums(grad, stats))
                whole = (sum(p[0] for p in parts), sum(p[1] for p in parts))
            grad_x, grad_gamma, grad_beta = norm.batch_norm_train_backward(grad, stats, gamma, whole)
        else:
            grad_x, grad_gamma, grad_beta = norm.batch_norm_eval_backward(
                grad, cache, gamma, mean, var, plan.config["eps"]
            )
        if needs.params:
            grads[f"{plan.name}.weight"] = grad_gamma.astype(gamma.dtype)
            grads[f"{plan.name}.bias"] = grad_beta.astype(gamma.dtype)
        return [grad_x if needs.inputs[0] else None]

    def to_onnx(self, graph: Any, plan: LayerPlan, params: dict[str, np.ndarray], inputs: list[str]) -> str:
        names = [graph.constant(f"{plan.name}.{s}", params[f"{plan.name}.{s}"]) for s in ("weight", "bias")]
        names += [
            graph.constant(f"{plan.name}.{s}", params[f"{plan.name}.{s}"]) for s in ("running_mean", "running_var")
        ]
        return str(graph.node("BatchNormalization", plan.name, [inputs[0], *names], epsilon=plan.config["eps"]))

    def torch_module(self, plan: LayerPlan) -> str:
        cls = "nn.BatchNorm2d" if len(plan.input_shape) == 3 else "nn.BatchNorm1d"
        return f"{cls}({plan.input_shape[0]}, eps={plan.config['eps']}, momentum={plan.config['momentum']})"


MAX_NORMALISE = 1e4  # a mean's size or a std's inverse past this is no picture's preparation


@register
class Normalize(LayerKind):
    """``y = (x − mean) / std`` channel by channel with fixed numbers: how a model trained on prepared inputs
    (PyTorch's ``Normalize(0.1307, 0.3081)``, a range of 0..255 or −1..1, a Sub of the mean at the input)
    reads the app's pictures in 0..1. Nothing trains; an import puts it first, where it is shown."""

    type = "normalize"
    prefix = "normalize"
    fields = {"mean": 0.0, "std": 1.0}
    words = "input preparation: each channel shifted by a mean and divided by a standard deviation, fixed numbers"
    draw = "map"  # a cell reads one cell; its numbers are its fields, not weights

    def configure(self, config: dict[str, Any], shapes: Sequence[Shape], where: Where) -> Shape:
        channels = shapes[0][0]
        for key, low in (("mean", -MAX_NORMALISE), ("std", 1 / MAX_NORMALISE)):
            raw = config[key]
            values = list(raw) if isinstance(raw, (list, tuple)) else [raw] * channels
            if len(values) != channels:
                raise where.error(f"{key} must be one number or one a channel ({channels}), got {short(raw)}")
            config[key] = [as_number(v, key, where, low, MAX_NORMALISE) for v in values]
        return shapes[0]

    def multiply_adds(self, plan: LayerPlan) -> int:
        return int(np.prod(plan.output_shape))

    def size_formula(self, plan: LayerPlan) -> tuple[str | None, bool]:
        return "y = (x − mean) / std, channel by channel", True

    def summary(self, config: dict[str, Any]) -> str:
        return f"mean {config.get('mean')}, std {config.get('std')}"

    def brief(self, config: dict[str, Any]) -> str:
        return "normalize"

    def _scale_shift(self, plan: LayerPlan, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        mean, std = np.asarray(plan.config["mean"], np.float64), np.asarray(plan.config["std"], np.float64)
        return (1 / std).astype(dtype), (-mean / std).astype(dtype)

    def forward(
        self, plan: LayerPlan, xs: Sequence[np.ndarray], params: dict[str, np.ndarray], run: Run
    ) -> tuple[np.ndarray, Any]:
        scale, shift = self._scale_shift(plan, xs[0].dtype)  # channels are the last axis
        y: np.ndarray = np.multiply(xs[0], scale)
        y += shift
        return y, None

    def backward(
        self,
        plan: LayerPlan,
        grad: np.ndarray,
        cache: Any,
        params: dict[str, np.ndarray],
        grads: dict[str, np.ndarray],
        needs: Needs,
    ) -> list[np.ndarray | None]:
        return [grad * self._scale_shift(plan, grad.dtype)[0]]

    def _per_channel(self, plan: LayerPlan, key: str) -> np.ndarray:
        values = np.asarray(plan.config[key], np.float32)
        return values.reshape(1, -1, 1, 1) if len(plan.input_shape) == 3 else values.reshape(1, -1)

    def to_onnx(self, graph: Any, plan: LayerPlan, params: dict[str, np.ndarray], inputs: list[str]) -> str:
        mean = graph.constant(f"{plan.name}.mean", self._per_channel(plan, "mean"))
        std = graph.constant(f"{plan.name}.std", self._per_channel(plan, "std"))
        return str(graph.node("Div", plan.name, [graph.node("Sub", plan.name, [inputs[0], mean]), std]))

    def torch_call(self, plan: LayerPlan, module: str | None, args: Sequence[str]) -> str:
        shape = "(1, -1, 1, 1)" if len(plan.input_shape) == 3 else "(1, -1)"
        mean, std = (f"torch.tensor({plan.config[k]}).reshape{shape}" for k in ("mean", "std"))
        return f"(({args[0]}) - {mean}) / {std}"
