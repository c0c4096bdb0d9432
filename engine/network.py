"""A network built from a spec (:mod:`engine.spec`): its parameters, and the forward and backward
pass of every layer type, one layer at a time (cs231n's layer/cache style).

Parameters are ``{name}.weight`` / ``{name}.bias`` with PyTorch's shapes, conv ``(F, C, KH, KW)`` and
linear ``(out, in)``, so a weight file maps one-to-one onto the same ``torch.nn`` model. Batches are
split across the cores by :mod:`engine.parallel`, a training step's slices on helper processes
(:mod:`engine.processes`).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from engine import channels_last, processes
from engine._checks import pair
from engine.architectures import LENET_SPEC
from engine.budget import check_time
from engine.conv import conv2d, conv2d_backward, conv2d_with_columns
from engine.errors import EngineError
from engine.layers import (
    cross_entropy,
    cross_entropy_backward,
    dropout_mask,
    linear,
    linear_backward,
    relu,
    sigmoid,
    sigmoid_backward,
    softmax,
    tanh,
    tanh_backward,
)
from engine.memory import batch_within, layer_memory
from engine.parallel import (
    COLUMNS_BUDGET,
    PARALLEL_MIN_BATCH,
    PARALLEL_MIN_TRAIN_BATCH,
    available_cores,
    in_slices,
    one_blas_thread,
    slice_bounds,
)
from engine.spec import (
    ACTIVATIONS,
    Field,
    LayerPlan,
    describe_plan,
    first_trained,
    parameter_shapes,
    plan_network,
    receptive_fields,
)

# -- forward and backward, one layer at a time --------------------------------------------------------
# Between layers a batch of maps is channels-last, (N, H, W, C), the layout :mod:`engine.channels_last`
# runs fastest in; what the network reports (activations, gradients) is (N, C, H, W), as PyTorch's.


def _geometry(cfg: dict[str, Any]) -> channels_last.ConvGeometry:
    return channels_last.ConvGeometry(
        pair(cfg["kernel_size"]), pair(cfg["stride"]), pair(cfg["padding"]), pair(cfg["dilation"])
    )


def _conv_args(cfg: dict[str, Any]) -> dict[str, Any]:
    """The arguments of :mod:`engine.conv`'s ops, for the padding modes that copy or re-weight."""
    return {
        "stride": pair(cfg["stride"]),
        "padding": pair(cfg["padding"]),
        "dilation": pair(cfg["dilation"]),
        "padding_mode": cfg["padding_mode"],
    }


def _conv_forward(plan: LayerPlan, x: np.ndarray, params: dict[str, np.ndarray], keep: bool) -> tuple[np.ndarray, Any]:
    w, b = params[f"{plan.owner}.weight"], params[f"{plan.owner}.bias"]
    if plan.config["padding_mode"] == "zeros":
        return channels_last.conv2d(x, channels_last.flat_weights(w), b, _geometry(plan.config)), x
    # reflect, replicate, circular and partial padding run in (N, C, H, W) through engine.conv
    x = channels_last.to_channels_first(x)
    if not keep:
        return channels_last.to_channels_last(conv2d(x, w, b, **_conv_args(plan.config))), None
    out, columns = conv2d_with_columns(x, w, b, **_conv_args(plan.config))
    return channels_last.to_channels_last(out), (x, columns)


def _conv_backward(
    plan: LayerPlan,
    grad: np.ndarray,
    cache: Any,
    params: dict[str, np.ndarray],
    grads: dict[str, np.ndarray],
    need_input_grad: bool,
    need_param_grads: bool,
) -> np.ndarray:
    w = params[f"{plan.owner}.weight"]
    if plan.config["padding_mode"] == "zeros":
        grad_x, grad_w, grad_b = channels_last.conv2d_backward(
            grad, cache, channels_last.flat_weights(w), _geometry(plan.config), need_input_grad, need_param_grads
        )
        if grad_w is not None and grad_b is not None:
            f, c, kh, kw = w.shape
            grads[f"{plan.owner}.weight"] = np.ascontiguousarray(grad_w.reshape(kh, kw, c, f).transpose(3, 2, 0, 1))
            grads[f"{plan.owner}.bias"] = grad_b
        return np.empty((0,), w.dtype) if grad_x is None else grad_x
    x, columns = cache
    grad_x, grad_w, grad_b = conv2d_backward(
        channels_last.to_channels_first(grad),
        x,
        w,
        columns=columns,
        need_input_grad=need_input_grad,
        **_conv_args(plan.config),
    )
    if need_param_grads:
        grads[f"{plan.owner}.weight"], grads[f"{plan.owner}.bias"] = grad_w, grad_b
    return channels_last.to_channels_last(grad_x) if need_input_grad else grad_x


def _layer_forward(
    plan: LayerPlan, x: np.ndarray, params: dict[str, np.ndarray], rng: np.random.Generator | None, keep: bool
) -> tuple[np.ndarray, Any]:
    """One layer's output and, when ``keep``, what its backward pass needs (cs231n's cache)."""
    kind, cfg = plan.type, plan.config
    if kind == "conv":
        return _conv_forward(plan, x, params, keep)
    if kind == "maxpool":
        out, winners = channels_last.max_pool2d(x, pair(cfg["kernel_size"]), pair(cfg["stride"]), keep)
        return out, (x.shape, winners)
    if kind == "avgpool":
        return channels_last.avg_pool2d(x, pair(cfg["kernel_size"]), pair(cfg["stride"])), x.shape
    if kind == "linear":
        return linear(x, params[f"{plan.owner}.weight"], params[f"{plan.owner}.bias"]), x
    if kind == "flatten":  # in PyTorch's (C, H, W) order, as the next layer's weights expect
        maps = channels_last.to_channels_first(x) if x.ndim == 4 else x
        return maps.reshape(len(x), -1), x.shape
    if kind in ACTIVATIONS:
        y = {"relu": relu, "tanh": tanh, "sigmoid": sigmoid}[kind](x)
        return y, y
    # dropout: the identity at inference, a random mask while training
    if rng is None or cfg["rate"] == 0:
        return x, None
    if x.ndim == 4:  # drawn in (N, C, H, W) order, so a seed drops the same units in either layout
        nchw = (x.shape[0], x.shape[3], x.shape[1], x.shape[2])
        mask = channels_last.to_channels_last(dropout_mask(nchw, cfg["rate"], rng, x.dtype.type))
    else:
        mask = dropout_mask(x.shape, cfg["rate"], rng, x.dtype.type)
    return x * mask, mask


def _layer_backward(
    plan: LayerPlan,
    grad: np.ndarray,
    cache: Any,
    params: dict[str, np.ndarray],
    grads: dict[str, np.ndarray],
    need_input_grad: bool,
    need_param_grads: bool = True,
) -> np.ndarray:
    """d loss / d layer input from d loss / d layer output (an empty array instead when ``need_input_grad``
    is false for a conv layer); parameter gradients go into ``grads`` unless ``need_param_grads`` is false
    (a frozen layer)."""
    kind, cfg = plan.type, plan.config
    if kind == "conv":
        return _conv_backward(plan, grad, cache, params, grads, need_input_grad, need_param_grads)
    if kind == "linear":
        weight = params[f"{plan.owner}.weight"]
        if not need_param_grads:
            return np.asarray(grad @ weight)
        grad_x, grads[f"{plan.owner}.weight"], grads[f"{plan.owner}.bias"] = linear_backward(grad, cache, weight)
        return grad_x
    if kind == "maxpool":
        x_shape, winners = cache
        return channels_last.max_pool2d_backward(grad, winners, x_shape, pair(cfg["kernel_size"]), pair(cfg["stride"]))
    if kind == "avgpool":
        return channels_last.avg_pool2d_backward(grad, cache, pair(cfg["kernel_size"]), pair(cfg["stride"]))
    if kind == "flatten":
        if len(cache) != 4:
            return grad.reshape(cache)
        n, h, w, c = cache
        return channels_last.to_channels_last(grad.reshape(n, c, h, w))
    if kind == "relu":
        return np.asarray(grad * (cache > 0))
    if kind == "tanh":
        return tanh_backward(grad, cache)
    if kind == "sigmoid":
        return sigmoid_backward(grad, cache)
    return grad if cache is None else grad * cache  # dropout


def _reported(x: np.ndarray) -> np.ndarray:
    """A layer's output as the network reports it: maps in (N, C, H, W)."""
    return channels_last.to_channels_first(x) if x.ndim == 4 else x


# -- the network ---------------------------------------------------------------------------------------


@dataclass
class Network:
    """A built network: its spec, parameters by name (PyTorch's shapes) and metadata.

    x is always (N, C, H, W) as the spec's ``input`` says; logits are (N, classes).
    """

    spec: dict[str, Any]
    params: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)
    plans: list[LayerPlan] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.plans = plan_network(self.spec)
        expected = {k: s for p in self.plans for k, s in parameter_shapes(p).items()}
        missing = sorted(set(expected) - set(self.params))
        if missing:
            raise EngineError(f"parameters missing for this spec: {', '.join(missing)}")
        for key, shape in expected.items():
            if tuple(self.params[key].shape) != shape:
                raise EngineError(f"{key} has shape {tuple(self.params[key].shape)}, the spec needs {shape}")
        self.params = {k: self.params[k] for k in expected}  # in layer order, nothing extra

    # -- what it is ----------------------------------------------------------------------------------

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = self.spec["input"]
        return (int(c), int(h), int(w))

    @property
    def classes(self) -> int:
        return int(self.spec["classes"])

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(p.owner for p in self.plans if p.named)

    @property
    def parameter_count(self) -> int:
        return sum(int(p.size) for p in self.params.values())

    @property
    def dataset(self) -> str | None:
        """The data set it was trained on (or given at import), whose test pictures its views show; None
        for an imported model given none."""
        name = self.meta.get("dataset", "digits")
        return str(name) if name else None

    @property
    def preparation(self) -> str:
        """How a picture becomes its input: ``digit`` (MNIST's crop, box and centre of mass), ``picture``
        (the whole picture scaled to fit) or ``none`` (scaled as it is)."""
        return str(self.meta.get("preprocess") or ("digit" if self.dataset in ("digits", None) else "picture"))

    @property
    def labels(self) -> list[str]:
        """The class names (from the metadata), or the class numbers."""
        names = self.meta.get("labels")
        return list(names) if names and len(names) == self.classes else [str(k) for k in range(self.classes)]

    def describe(self) -> list[dict[str, Any]]:
        """The input, then one entry per named layer: type, output shape, parameters, receptive field."""
        return describe_plan(self.plans, self.input_shape)

    def receptive_field(self, name: str) -> Field:
        return receptive_fields(self.plans, self.input_shape)[name]

    # -- inference ---------------------------------------------------------------------------------

    def _check_input(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 4 or x.shape[1:] != self.input_shape:
            expected = "(N, " + ", ".join(map(str, self.input_shape)) + ")"
            raise EngineError(f"the network's input must be {expected}, got {x.shape}")
        if x.dtype not in (np.float32, np.float64):
            x = x.astype(np.float32)
        return x

    def activations(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every named layer's output in order (after its activation); the last is the logits."""
        x = self._check_input(x)

        def run(x: np.ndarray) -> dict[str, np.ndarray]:
            out: dict[str, np.ndarray] = {}
            x = channels_last.to_channels_last(x)
            for plan in self.plans:
                x, _ = _layer_forward(plan, x, self.params, None, keep=False)
                if plan.owner != "input" and plan.type != "flatten":
                    out[plan.owner] = x
            return {name: _reported(output) for name, output in out.items()}

        activations: dict[str, np.ndarray] = in_slices(run, x, min_batch=len(x) + 1)[0]
        return activations

    def _logits(self, x: np.ndarray) -> np.ndarray:
        x = channels_last.to_channels_last(x)
        for plan in inference_order(self.plans):
            x, _ = _layer_forward(plan, x, self.params, None, keep=False)
        return x

    def forward(self, x: np.ndarray) -> np.ndarray:
        """(N, C, H, W) -> logits (N, classes); a large batch is split across the cores."""
        x = self._check_input(x)
        return np.concatenate(in_slices(self._logits, x, min_batch=PARALLEL_MIN_BATCH))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """(N, C, H, W) -> probabilities (N, classes), each row summing to 1."""
        return softmax(self.forward(x).astype(np.float64))

    def max_batch(self, budget_bytes: int = COLUMNS_BUDGET) -> int:
        """How many inputs one pass may take before a conv layer's im2col matrix passes the budget."""
        per_input = max((layer.columns_bytes for layer in layer_memory(self.plans)), default=0)
        return batch_within(per_input, budget_bytes, budget_bytes)

    # -- gradients ---------------------------------------------------------------------------------

    def _forward_keep(
        self, x: np.ndarray, rng: np.random.Generator | None, plans: Sequence[LayerPlan]
    ) -> tuple[np.ndarray, list[Any]]:
        """The logits of (N, C, H, W) inputs, and each plan's cache, running ``plans`` (the network's own,
        or :func:`training_order`'s)."""
        caches = []
        x = channels_last.to_channels_last(x)
        for plan in plans:
            x, cache_ = _layer_forward(plan, x, self.params, rng, keep=True)
            caches.append(cache_)
        return x, caches

    def _backward(
        self,
        grad: np.ndarray,
        caches: list[Any],
        need_input_grad: bool,
        plans: Sequence[LayerPlan],
        at_layers: dict[str, np.ndarray] | None = None,
        frozen: Collection[str] = (),
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Back through the layers to the input's gradient (N, C, H, W); ``at_layers``, if given (with the
        network's own plans), receives the gradient with respect to each named layer's reported output
        (what :meth:`activations` gives), as Grad-CAM needs. ``frozen`` layers get no parameter gradients,
        and without ``need_input_grad`` the pass stops at the first layer that trains."""
        grads: dict[str, np.ndarray] = {}
        reported = self._reported_plans()
        first = 0 if need_input_grad else first_trained(plans, frozen)
        for i in range(len(plans) - 1, first - 1, -1):
            if at_layers is not None and i in reported:
                at_layers[plans[i].owner] = _reported(grad)
            # the first layer's input gradient is only wanted for input gradients
            needed = need_input_grad or i > first
            grad = _layer_backward(plans[i], grad, caches[i], self.params, grads, needed, plans[i].owner not in frozen)
        return (_reported(grad) if need_input_grad else grad), grads

    def _reported_plans(self) -> set[int]:
        """Indices of the plans whose output is a named layer's reported output (its last, bar flatten)."""
        last: dict[str, int] = {}
        for i, plan in enumerate(self.plans):
            if plan.owner != "input" and plan.type != "flatten":
                last[plan.owner] = i
        return set(last.values())

    def loss_and_gradients(
        self,
        x: np.ndarray,
        labels: np.ndarray,
        dropout_rng: np.random.Generator | None = None,
        frozen: Collection[str] = (),
    ) -> tuple[float, np.ndarray, dict[str, np.ndarray]]:
        """Mean cross-entropy, the logits (N, classes), and d loss / d parameter keyed like ``params``.

        Dropout layers drop units only when ``dropout_rng`` is given (training); without it the
        pass is deterministic, as gradient checks need. A batch of ``PARALLEL_MIN_TRAIN_BATCH`` or
        more is split across the cores (each slice with its own dropout stream spawned from
        ``dropout_rng``), on helper processes once they are ready and on threads until then or without
        them, and the slices' gradients are averaged by their size.
        ``frozen`` layers (fine-tuning) get no gradients, and the backward pass ends at the first layer
        that trains.
        """
        x = self._check_input(x)
        labels = np.asarray(labels)
        frozen = frozenset(frozen)
        step = functools.partial(self._loss_and_gradients, frozen=frozen)
        cores = available_cores()
        if len(x) < PARALLEL_MIN_TRAIN_BATCH or cores == 1:
            whole: tuple[float, np.ndarray, dict[str, np.ndarray]] = in_slices(
                step, x, [labels], [dropout_rng], min_batch=len(x) + 1
            )[0]
            return whole
        rngs = dropout_rng.spawn(cores) if dropout_rng is not None else [None] * cores
        parts: list[tuple[float, np.ndarray, dict[str, np.ndarray]]]
        with processes.borrowed(cores - 1 if self._shareable(x) else 0) as helpers:
            if helpers:
                parts = self._step_with_helpers(x, labels, rngs, helpers, frozen)
            else:
                slices = [labels[a:b] for a, b in slice_bounds(len(x), cores)]
                parts = in_slices(step, x, slices, rngs, min_batch=PARALLEL_MIN_TRAIN_BATCH)
            # averaged while the helpers are still lent to this step: their parts are views of shared memory
            shares = [len(part[1]) / len(x) for part in parts]
            loss = sum(part[0] * share for part, share in zip(parts, shares))
            grads = {k: g * shares[0] for k, g in parts[0][2].items()}
            for part, share in zip(parts[1:], shares[1:]):
                for k, total in grads.items():
                    total += part[2][k] * share
            return float(loss), np.concatenate([part[1] for part in parts]), grads

    def _shareable(self, x: np.ndarray) -> bool:
        """Whether a step may go to helper processes, whose shared memory holds float32 only."""
        return x.dtype == np.float32 and all(p.dtype == np.float32 for p in self.params.values())

    def _step_with_helpers(
        self,
        x: np.ndarray,
        labels: np.ndarray,
        rngs: Sequence[np.random.Generator | None],
        helpers: Sequence[processes.Helper],
        frozen: frozenset[str],
    ) -> list[tuple[float, np.ndarray, dict[str, np.ndarray]]]:
        """Slice 0 here, slice k on helper k-1 meanwhile; a slice whose helper failed is computed here after."""
        check_time()
        bounds = slice_bounds(len(x), len(helpers) + 1)
        spec = json.dumps(self.spec)
        labels = labels.astype(np.int64, copy=False)
        for helper, (a, b), rng in zip(helpers, bounds[1:], rngs[1:]):
            helper.submit(spec, self.classes, self.params, frozen, x[a:b], labels[a:b], rng)
        (a, b), started = bounds[0], time.monotonic()
        try:
            with one_blas_thread():
                parts = [self._loss_and_gradients(x[a:b], labels[a:b], rngs[0], frozen)]
        finally:  # collected even when this slice failed, so the helpers are free for the next step
            wait = processes.SILENCE_SECONDS + processes.SILENCE_FACTOR * (time.monotonic() - started)
            answers = [helper.collect(wait) for helper in helpers]
        for answer, (a, b), rng in zip(answers, bounds[1:], rngs[1:]):
            parts.append(answer if answer is not None else self._loss_and_gradients(x[a:b], labels[a:b], rng, frozen))
        return parts

    def _loss_and_gradients(
        self,
        x: np.ndarray,
        labels: np.ndarray,
        dropout_rng: np.random.Generator | None,
        frozen: Collection[str] = (),
    ) -> tuple[float, np.ndarray, dict[str, np.ndarray]]:
        plans = training_order(self.plans)
        logits, caches = self._forward_keep(x, dropout_rng, plans)
        loss = cross_entropy(logits, labels)
        grad = cross_entropy_backward(logits, labels).astype(logits.dtype)
        _, grads = self._backward(grad, caches, False, plans, frozen=frozen)
        return loss, logits, grads

    def check_target(self, target: int | np.ndarray, n: int) -> np.ndarray:
        """``target`` as an (n,) array of class indices, or an :class:`EngineError` in words."""
        targets = np.broadcast_to(np.asarray(target), (n,))
        if not np.issubdtype(targets.dtype, np.integer) or (targets < 0).any() or (targets >= self.classes).any():
            raise EngineError(f"target must be a class index 0..{self.classes - 1}, got {target!r}")
        return targets

    def input_gradient(self, x: np.ndarray, target: int | np.ndarray) -> np.ndarray:
        """``d logits[n, target[n]] / d x``, shape of ``x``; ``target`` an int or an (N,) array."""
        x = self._check_input(x)
        targets = self.check_target(target, len(x))
        seed = np.zeros((len(x), self.classes), x.dtype)
        seed[np.arange(len(x)), targets] = 1
        return self.backward_to_input(x, seed)[1]

    def backward_to_input(
        self,
        x: np.ndarray,
        seed: Callable[[np.ndarray], np.ndarray] | np.ndarray,
        at_layers: dict[str, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The logits (N, classes) and ``d (sum of seed * logits) / d x``: any gradient of the logits (a
        one-hot, a loss's) carried back to the input. ``seed`` is an (N, classes) array, or a function of
        the logits that works row by row. ``at_layers`` as in :meth:`_backward`."""
        x = self._check_input(x)
        fixed = None if callable(seed) else np.asarray(seed)

        def run(x: np.ndarray, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
            plans = self.plans if at_layers is not None else training_order(self.plans)
            logits, caches = self._forward_keep(x, None, plans)
            gradient = rows if rows is not None else seed(logits)  # type: ignore[operator]
            grad_x, _ = self._backward(np.asarray(gradient, logits.dtype), caches, True, plans, at_layers)
            assert grad_x is not None
            return logits, grad_x

        # each slice of the batch gets its own rows of the seed, so slices can go to different cores
        min_batch = PARALLEL_MIN_TRAIN_BATCH if at_layers is None else len(x) + 1
        parts = in_slices(run, x, min_batch=min_batch, rows=fixed)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def layer_gradient(
        self,
        x: np.ndarray,
        layer: str,
        seed: Callable[[np.ndarray], np.ndarray],
        before_activation: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Named layer ``layer``'s output for ``x`` and ``d (sum of seed(output) * output) / d x``: how the
        input should change to raise (say) one unit, as activation maximisation needs. With
        ``before_activation`` the output is taken before the layer's activation (a ReLU's zero has no
        gradient to climb)."""
        x = self._check_input(x)
        owned = [i for i, p in enumerate(self.plans) if p.owner == layer and (p.named or i in self._reported_plans())]
        if not owned:
            raise EngineError(f"no layer named {layer!r}; layers are {', '.join(self.layer_names)}")
        last = min(owned) if before_activation else max(owned)
        out, caches = self._forward_keep(x, None, self.plans[: last + 1])
        reported = _reported(out)
        grad = np.asarray(seed(reported), out.dtype)
        grad = channels_last.to_channels_last(grad) if grad.ndim == 4 else grad
        grad_x, _ = self._backward(grad, caches, True, self.plans[: last + 1])
        return reported, grad_x

    # -- persistence -------------------------------------------------------------------------------

    def copy(self) -> Network:
        return Network(
            json.loads(json.dumps(self.spec)), {k: v.copy() for k, v in self.params.items()}, dict(self.meta)
        )

    def save(self, path: str | Path | BinaryIO) -> None:
        """A ``.npz`` of named arrays plus ``spec`` and ``meta`` as JSON strings; never pickle."""
        arrays: dict[str, Any] = {"spec": np.array(json.dumps(self.spec)), "meta": np.array(json.dumps(self.meta))}
        np.savez_compressed(path, **{**arrays, **self.params})


def training_order(plans: Sequence[LayerPlan]) -> list[LayerPlan]:
    """The plans in the order a training step may run them: a ReLU just before a max pool swaps with it.
    The outputs are equal (see :func:`inference_order`), and so are the gradients: where a window's
    maximum is positive both orders send the gradient to the same first maximum, and where it is not,
    both send zero. The ReLU and its gradient then touch a quarter of the values (for a 2x2 pool)."""
    return _swapped_before_pool(plans, ("relu",))


def inference_order(plans: Sequence[LayerPlan]) -> list[LayerPlan]:
    """The plans in the order a forward pass without gradients may run them: an activation just before a
    max pool swaps with it. ReLU, tanh and the sigmoid never decrease, so ``max(f(a), f(b)) = f(max(a, b))``
    exactly, and the activation then runs on a quarter of the values (for a 2x2 pool)."""
    return _swapped_before_pool(plans, ACTIVATIONS)


def _swapped_before_pool(plans: Sequence[LayerPlan], activations: Sequence[str]) -> list[LayerPlan]:
    order = list(plans)
    for k in range(len(order) - 1):
        if order[k].type in activations and order[k + 1].type == "maxpool":
            order[k], order[k + 1] = order[k + 1], order[k]
    return order


def initial_parameters(plans: Sequence[LayerPlan], seed: int = 0) -> dict[str, np.ndarray]:
    """He-normal weights before a ReLU (Glorot-normal otherwise), zero biases; float32."""
    rng = np.random.default_rng(seed)
    params: dict[str, np.ndarray] = {}
    for i, plan in enumerate(plans):
        shapes = parameter_shapes(plan)
        if not shapes:
            continue
        nxt = next((p.type for p in plans[i + 1 :] if p.type in ACTIVATIONS or p.named), None)
        for key, shape in shapes.items():
            if key.endswith(".bias"):
                params[key] = np.zeros(shape, np.float32)
                continue
            fan_in = int(np.prod(shape[1:]))
            fan_out = shape[0] * int(np.prod(shape[2:]))
            std = np.sqrt(2 / fan_in) if nxt == "relu" else np.sqrt(2 / (fan_in + fan_out))
            params[key] = (rng.standard_normal(shape) * std).astype(np.float32)
    return params


def build_network(spec: Mapping[str, Any], seed: int = 0) -> Network:
    """A fresh network from a spec, with seeded initial weights; :class:`SpecError` names a bad layer."""
    plans = plan_network(spec)
    spec_copy = json.loads(json.dumps(spec))  # the network owns a plain-data copy
    return Network(spec_copy, initial_parameters(plans, seed))


def _file_name(path: str | Path | BinaryIO) -> str:
    return Path(path).name if isinstance(path, (str, Path)) else "the file"


def load_network(path: str | Path | BinaryIO) -> Network:
    """A network saved by :meth:`Network.save`. A file of named LeNet weights without a spec
    (as earlier ``convscope train`` wrote) is read as :data:`LENET_SPEC`."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise EngineError(f"{_file_name(path)} is not a network file (.npz): {error}") from None
    with data:
        files = set(data.files)
        spec = json.loads(str(data["spec"])) if "spec" in files else LENET_SPEC
        meta = json.loads(str(data["meta"])) if "meta" in files else {}
        params = {k: data[k].astype(np.float32) for k in files - {"spec", "meta"}}
    return Network(spec, params, meta)


@dataclass(frozen=True)
class Classification:
    """Softmax probabilities (float64, summing to 1) and the ``k`` most likely classes, best first."""

    probabilities: np.ndarray
    top: list[tuple[int, float]]


def classify(logits: np.ndarray, k: int = 2) -> Classification:
    """Logits (classes,) -> probabilities and the top ``k`` (class, probability) pairs; ties go to the
    lower class index, as ``argmax`` does."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 1 or not np.isfinite(logits).all():
        raise EngineError(f"classify takes one row of finite logits, got shape {logits.shape}")
    probabilities = softmax(logits)
    order = np.argsort(-probabilities, kind="stable")[:k]
    return Classification(probabilities, [(int(c), float(probabilities[c])) for c in order])
