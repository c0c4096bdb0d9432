"""Batch normalisation as a layer: per channel after a conv, per unit after a linear layer; its scale and
shift (``NAME.weight``, ``NAME.bias``) train, its running statistics (``NAME.running_mean``,
``NAME.running_var``) are kept with them. The arithmetic is :mod:`engine.norm`'s."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from engine import norm
from engine.kinds.base import LayerKind, Needs, Run, Shape, Where, as_number, register

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
