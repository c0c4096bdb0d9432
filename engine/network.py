"""A network built from a spec (:mod:`engine.spec`): its parameters, and its passes (:mod:`engine.graph`
runs them, each layer type's arithmetic being its own, :mod:`engine.kinds`).

Parameters are ``{name}.weight`` / ``{name}.bias`` with PyTorch's shapes, conv ``(F, C/groups, KH, KW)``
and linear ``(out, in)``, and a BatchNorm layer's running statistics ``{name}.running_mean`` /
``{name}.running_var`` sit beside them, so a weight file maps one-to-one onto the same ``torch.nn``
model's state. Batches are split across the cores by :mod:`engine.parallel`, a training step's slices
on helper processes (:mod:`engine.processes`), when every layer treats each picture on its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from engine import channels_last, graph
from engine.architectures import LENET_SPEC
from engine.errors import EngineError
from engine.kinds import Field, Run
from engine.layers import cross_entropy, cross_entropy_backward, sigmoid, softmax
from engine.memory import batch_within, layer_memory
from engine.parallel import COLUMNS_BUDGET, PARALLEL_MIN_BATCH, PARALLEL_MIN_TRAIN_BATCH, available_cores, in_slices
from engine.spec import LayerPlan, describe_plan, parameter_shapes, plan_network, receptive_fields, state_shapes
from engine.stepping import step_in_parts, step_synchronised

Step = tuple[float, np.ndarray, dict[str, np.ndarray]]


def _reported(x: np.ndarray) -> np.ndarray:
    """A layer's output as the network reports it: maps in (N, C, H, W)."""
    return channels_last.to_channels_first(x) if x.ndim == 4 else x


@dataclass
class Network:
    """A built network: its spec, its state by name (parameters, running statistics; PyTorch's shapes) and
    metadata. x is always (N, C, H, W) as the spec's ``input`` says; logits are (N, classes)."""

    spec: dict[str, Any]
    params: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)
    plans: list[LayerPlan] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.plans = plan_network(self.spec)
        expected = {k: s for p in self.plans for k, s in state_shapes(p).items()}
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
        return tuple(p.name for p in self.plans if p.named)

    @property
    def trainable_keys(self) -> tuple[str, ...]:
        """The parameters a training step changes (not the running statistics), in layer order."""
        return tuple(k for p in self.plans for k in parameter_shapes(p))

    @property
    def parameter_count(self) -> int:
        return sum(int(self.params[k].size) for k in self.trainable_keys)

    @property
    def per_picture(self) -> bool:
        """Whether a training step treats each picture on its own (no BatchNorm): only then may it split."""
        return all(p.kind.per_picture for p in self.plans)

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
    def independent(self) -> bool:
        """Whether each class's probability is its own (an imported model ending in a sigmoid over K scores)
        rather than a softmax that adds up to 1."""
        return self.meta.get("outputs") == "independent"

    @property
    def labels(self) -> list[str]:
        """The class names (from the metadata), or the class numbers."""
        names = self.meta.get("labels")
        return list(names) if names and len(names) == self.classes else [str(k) for k in range(self.classes)]

    def describe(self) -> list[dict[str, Any]]:
        """The input, then one entry per named layer: type, inputs, output shape, parameters, receptive field."""
        return describe_plan(self.plans, self.input_shape)

    def receptive_field(self, name: str) -> Field:
        return receptive_fields(self.plans, self.input_shape)[name]

    def reported_plans(self) -> dict[str, int]:
        """Each named layer's reported output: the plan that ends it (after its activations, before a flatten)."""
        ends: dict[str, int] = {}
        for plan in self.plans:
            if plan.named or (plan.name in ends and not plan.kind.keeps_flat):
                ends[plan.name] = plan.index
        return ends

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
        ends = self.reported_plans()

        def run(x: np.ndarray) -> dict[str, np.ndarray]:
            trace = graph.forward(self.plans, channels_last.to_channels_last(x), self.params, Run(), ends.values())
            return {name: _reported(trace.reported[index]) for name, index in ends.items()}

        activations: dict[str, np.ndarray] = in_slices(run, x, min_batch=len(x) + 1)[0]
        return activations

    def _logits(self, x: np.ndarray) -> np.ndarray:
        plans, params = graph.folded_batchnorm(self.plans, self.params)
        plans = graph.swapped_before_pool(plans, training=False)
        return graph.forward(plans, channels_last.to_channels_last(x), params, Run()).output

    def forward(self, x: np.ndarray) -> np.ndarray:
        """(N, C, H, W) -> logits (N, classes); a large batch is split across the cores."""
        x = self._check_input(x)
        return np.concatenate(in_slices(self._logits, x, min_batch=PARALLEL_MIN_BATCH))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """(N, C, H, W) -> probabilities (N, classes), each row summing to 1 (for :attr:`independent`
        outputs, each its own sigmoid)."""
        return probabilities(self.forward(x), self.independent)

    def max_batch(self, budget_bytes: int = COLUMNS_BUDGET) -> int:
        """How many inputs one pass may take before a conv layer's im2col matrix passes the budget."""
        per_input = max((layer.columns_bytes for layer in layer_memory(self.plans)), default=0)
        return batch_within(per_input, budget_bytes, budget_bytes)

    # -- training ----------------------------------------------------------------------------------

    def loss_and_gradients(
        self,
        x: np.ndarray,
        labels: np.ndarray,
        dropout_rng: np.random.Generator | None = None,
        frozen: Collection[str] = (),
    ) -> Step:
        """Mean cross-entropy, the logits (N, classes), and d loss / d parameter keyed like ``params``: a
        training pass, so BatchNorm normalises by the batch's statistics and moves its running ones.

        Dropout layers drop units only when ``dropout_rng`` is given; without it the pass is deterministic,
        as gradient checks need. When every layer treats each picture on its own, a batch of
        ``PARALLEL_MIN_TRAIN_BATCH`` or more is split across the cores (each slice with its own dropout
        stream spawned from ``dropout_rng``), on helper processes once they are ready and on threads until
        then, and the slices' gradients are averaged by their size; a BatchNorm network's slices run on
        threads that meet at every BatchNorm, so that its statistics are the whole batch's. ``frozen``
        layers (fine-tuning) get no gradients, and the backward pass ends below the last layer that trains."""
        x = self._check_input(x)
        labels = np.asarray(labels)
        frozen = frozenset(frozen)
        cores = available_cores()
        if len(x) < PARALLEL_MIN_TRAIN_BATCH or cores == 1:
            step = in_slices(self.training_step, x, [labels], [dropout_rng], [frozen], min_batch=len(x) + 1)
            return step[0]  # type: ignore[no-any-return]
        if not self.per_picture:
            return step_synchronised(self, x, labels, dropout_rng, frozen, cores)
        return step_in_parts(self, x, labels, dropout_rng, frozen, cores)

    def training_step(
        self,
        x: np.ndarray,
        labels: np.ndarray,
        dropout_rng: np.random.Generator | None,
        frozen: Collection[str] = (),
        sync: Any = None,
        rank: int = 0,
        share: float = 1.0,
    ) -> Step:
        """One slice's loss, logits and gradients (what :meth:`loss_and_gradients` combines over slices).
        A slice of a synchronised step (``sync``, ``rank``: see :mod:`engine.stepping`) seeds its backward
        pass with its ``share`` of the whole batch's mean loss, so that the slices' gradients add up."""
        plans = graph.swapped_before_pool(self.plans, training=True)
        run = Run(training=True, rng=dropout_rng, keep=True, state=self.params, sync=sync, rank=rank)
        trace = graph.forward(plans, channels_last.to_channels_last(x), self.params, run)
        logits = trace.output
        loss = cross_entropy(logits, labels)
        grad = (cross_entropy_backward(logits, labels) * share).astype(logits.dtype)
        _, grads, _ = graph.backward(plans, grad, trace.caches, self.params, False, frozen)
        return loss, logits, grads

    def shareable(self, x: np.ndarray) -> bool:
        """Whether a step may go to helper processes, whose shared memory holds float32 only."""
        return x.dtype == np.float32 and all(p.dtype == np.float32 for p in self.params.values())

    # -- gradients of the input --------------------------------------------------------------------

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
        one-hot, a loss's) carried back to the input, in inference mode. ``seed`` is an (N, classes) array,
        or a function of the logits that works row by row. ``at_layers``, if given, receives the gradient
        with respect to each named layer's reported output (what :meth:`activations` gives), as Grad-CAM
        needs."""
        x = self._check_input(x)
        fixed = None if callable(seed) else np.asarray(seed)
        ends = self.reported_plans() if at_layers is not None else {}

        def run(x: np.ndarray, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
            plans = self.plans if at_layers is not None else graph.swapped_before_pool(self.plans, training=True)
            trace = graph.forward(plans, channels_last.to_channels_last(x), self.params, Run(keep=True))
            gradient = rows if rows is not None else seed(trace.output)  # type: ignore[operator]
            grad = np.asarray(gradient, trace.output.dtype)
            grad_x, _, at = graph.backward(plans, grad, trace.caches, self.params, True, report=ends.values())
            if at_layers is not None:
                at_layers.update({name: _reported(at[index]) for name, index in ends.items() if index in at})
            assert grad_x is not None
            return trace.output, _reported(grad_x)

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
        ends = self.reported_plans()
        if layer not in ends:
            raise EngineError(f"no layer named {layer!r}; layers are {', '.join(self.layer_names)}")
        head = next(p.index for p in self.plans if p.named and p.name == layer)
        plans = self.plans[: (head if before_activation else ends[layer]) + 1]
        trace = graph.forward(plans, channels_last.to_channels_last(x), self.params, Run(keep=True))
        reported = _reported(trace.output)
        grad = np.asarray(seed(reported), trace.output.dtype)
        grad = channels_last.to_channels_last(grad) if grad.ndim == 4 else grad
        grad_x, _, _ = graph.backward(plans, grad, trace.caches, self.params, True)
        assert grad_x is not None
        return reported, _reported(grad_x)

    # -- persistence -------------------------------------------------------------------------------

    def copy(self) -> Network:
        return Network(
            json.loads(json.dumps(self.spec)), {k: v.copy() for k, v in self.params.items()}, dict(self.meta)
        )

    def save(self, path: str | Path | BinaryIO) -> None:
        """A ``.npz`` of named arrays plus ``spec`` and ``meta`` as JSON strings; never pickle."""
        arrays: dict[str, Any] = {"spec": np.array(json.dumps(self.spec)), "meta": np.array(json.dumps(self.meta))}
        np.savez_compressed(path, **{**arrays, **self.params})


def initial_parameters(plans: Sequence[LayerPlan], seed: int = 0) -> dict[str, np.ndarray]:
    """Each layer's fresh state (its type's :meth:`~engine.kinds.LayerKind.initial`: He-normal weights
    before a ReLU, Glorot-normal otherwise, zero biases; BatchNorm's ones and zeros); float32."""
    rng = np.random.default_rng(seed)
    params: dict[str, np.ndarray] = {}
    for i, plan in enumerate(plans):
        if not state_shapes(plan):
            continue
        # the next activation or named layer, looking past a BatchNorm (conv, BN, ReLU is still "before a ReLU")
        after = (p for p in plans[i + 1 :] if (p.kind.activation or p.named) and not p.kind.normalises)
        before_relu = next((p.type for p in after), None) == "relu"
        for suffix, value in plan.kind.initial(plan, rng, before_relu).items():
            params[f"{plan.name}.{suffix}"] = value
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
    """Probabilities (float64: softmax, summing to 1, or independent sigmoids) and the ``k`` most likely
    classes, best first."""

    probabilities: np.ndarray
    top: list[tuple[int, float]]


def classify(logits: np.ndarray, k: int = 2, independent: bool = False) -> Classification:
    """Logits (classes,) -> probabilities (each class's own sigmoid when ``independent``) and the top ``k``
    (class, probability) pairs; ties go to the lower class index, as ``argmax`` does."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 1 or not np.isfinite(logits).all():
        raise EngineError(f"classify takes one row of finite logits, got shape {logits.shape}")
    chances = probabilities(logits, independent)
    order = np.argsort(-chances, kind="stable")[:k]
    return Classification(chances, [(int(c), float(chances[c])) for c in order])


def probabilities(logits: np.ndarray, independent: bool = False) -> np.ndarray:
    """Logits (..., classes) -> float64 probabilities along the last axis: a softmax (adding up to 1), or
    each class's own sigmoid for ``independent`` outputs."""
    logits = np.asarray(logits, dtype=np.float64)
    return sigmoid(logits) if independent else softmax(logits)
