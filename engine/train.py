"""Training any :class:`~engine.network.Network` with its own backward pass.

One loop for every network and data set: Adam or SGD with momentum, decoupled weight decay, a
cosine or constant learning rate, augmentation suited to the data (warps for digits, shifts and
mirror images for clothing), an optional moving average of the weights, and hooks for a caller
that watches (``on_progress``, ``on_epoch``, ``on_snapshot``) or stops it (``should_stop``).
A seed makes a run repeatable.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.datasets import to_network_input
from engine.errors import EngineError
from engine.finetune import trainable
from engine.network import Network


def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = int(3 * sigma)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return np.asarray((taps / taps.sum()).astype(np.float32))


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int, int], sigma: float) -> np.ndarray:
    """Uniform noise in [-1, 1] (B, H, W) blurred by a Gaussian with replicated edges: two 1-D passes,
    each a product with a blur matrix (:func:`blur_matrix`) instead of a sliding window."""
    taps = _gaussian_kernel(sigma)
    b, h, w = shape
    noise = rng.uniform(-1, 1, shape).astype(np.float32)
    across = noise.reshape(b * h, w) @ blur_matrix(w, taps).T  # along each row
    down = blur_matrix(h, taps) @ across.reshape(b, h, w).transpose(1, 0, 2).reshape(h, b * w)  # each column
    return np.ascontiguousarray(down.reshape(h, b, w).transpose(1, 0, 2))


def blur_matrix(n: int, taps: np.ndarray) -> np.ndarray:
    """The (n, n) matrix of a 1-D correlation with ``taps`` (odd length, centred) over n samples whose
    edges are replicated: ``M[i, j]`` sums the taps that read sample j for output i, so
    ``out = M @ signal`` is the same as padding with the edge values and sliding the taps."""
    radius = len(taps) // 2
    reads = np.clip(np.arange(n)[:, None] + np.arange(-radius, radius + 1)[None], 0, n - 1)
    matrix = np.zeros((n, n), np.float32)
    np.add.at(matrix, (np.repeat(np.arange(n), len(taps)), reads.ravel()), np.tile(taps, n))
    return matrix


def random_warp(
    images: np.ndarray,
    rng: np.random.Generator,
    *,
    degrees: float = 10.0,
    scale: float = 0.1,
    shift: float = 2.0,
    elastic: float = 0.0,
    sigma: float = 4.0,
) -> np.ndarray:
    """Randomly rotates, scales, shifts and (optionally) elastically distorts each image (B, H, W).

    Every output pixel ``p`` samples the input, bilinearly and with zeros outside, at
    ``A^-1 (p - c - t) + c + e(p)``: ``c`` is the centre, ``A`` a rotation times a scale, ``t``
    a shift, and ``e`` a smooth random displacement field of strength ``elastic`` pixels per unit
    of smoothed noise (Simard et al., 2003), all drawn per image.
    """
    b, h, w = images.shape
    angle = np.deg2rad(rng.uniform(-degrees, degrees, b))
    zoom = rng.uniform(1 - scale, 1 + scale, b)
    ty, tx = rng.uniform(-shift, shift, (2, b))
    cy, cx = (h - 1) / 2, (w - 1) / 2
    cos, sin = np.cos(angle) / zoom, np.sin(angle) / zoom
    # A^-1 (p - c - t) + c is a linear map of the centred grid (yy, xx) plus an offset, both per image;
    # float32 throughout (coordinates of a few dozen pixels keep five decimals)
    yy = (np.arange(h, dtype=np.float32) - cy)[None, :, None]
    xx = (np.arange(w, dtype=np.float32) - cx)[None, None, :]
    per_image = (slice(None), None, None)
    c, s = cos.astype(np.float32)[per_image], sin.astype(np.float32)[per_image]
    src_y = c * yy - s * xx + (cy - cos * ty + sin * tx).astype(np.float32)[per_image]
    src_x = s * yy + c * xx + (cx - sin * ty - cos * tx).astype(np.float32)[per_image]
    if elastic > 0:
        src_y += elastic * smooth_noise(rng, (b, h, w), sigma)
        src_x += elastic * smooth_noise(rng, (b, h, w), sigma)
    return bilinear_sample(images, src_y, src_x)


def bilinear_sample(images: np.ndarray, src_y: np.ndarray, src_x: np.ndarray) -> np.ndarray:
    """``out[b, i, j]`` = ``images[b]`` read bilinearly at (``src_y[b, i, j]``, ``src_x[b, i, j]``), zero
    outside; (B, H, W) each, float32.

    The images get a border of zeros and every corner index is clipped into it, so a corner outside the
    picture reads a zero without a mask, and the four corners are read by one flat ``take`` each."""
    b, h, w = images.shape
    padded = np.zeros((b, h + 2, w + 2), np.float32)
    padded[:, 1:-1, 1:-1] = images
    y0, x0 = np.floor(src_y), np.floor(src_x)
    fy, fx = (src_y - y0).astype(np.float32, copy=False), (src_x - x0).astype(np.float32, copy=False)
    rows = [np.clip(y0 + k, -1, h).astype(np.intp) + 1 for k in (0, 1)]  # in the padded picture
    cols = [np.clip(x0 + k, -1, w).astype(np.intp) + 1 for k in (0, 1)]
    base = (np.arange(b) * ((h + 2) * (w + 2)))[:, None, None]
    flat = padded.reshape(-1)
    top, bottom = (flat.take(base + row * (w + 2) + cols[0]) for row in rows)
    top += fx * (flat.take(base + rows[0] * (w + 2) + cols[1]) - top)
    bottom += fx * (flat.take(base + rows[1] * (w + 2) + cols[1]) - bottom)
    return np.asarray(top + fy * (bottom - top), dtype=np.float32)


@dataclass
class Adam:
    """Adam (Kingma & Ba, 2015) with decoupled weight decay on the weights (AdamW)."""

    params: dict[str, np.ndarray]
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 1e-4
    steps: int = 0
    m: dict[str, np.ndarray] = field(default_factory=dict)
    v: dict[str, np.ndarray] = field(default_factory=dict)

    def step(self, grads: dict[str, np.ndarray], lr: float) -> None:
        self.steps += 1
        correction1 = 1 - self.beta1**self.steps
        correction2 = 1 - self.beta2**self.steps
        for name, param in self.params.items():
            g = grads[name]
            m = self.m.setdefault(name, np.zeros_like(param))
            v = self.v.setdefault(name, np.zeros_like(param))
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * g * g
            if name.endswith(".weight"):
                param -= lr * self.weight_decay * param
            param -= lr * (m / correction1) / (np.sqrt(v / correction2) + self.eps)


@dataclass
class WeightAverage:
    """Exponential moving average of the parameters (Polyak averaging); warms up over the first steps."""

    source: dict[str, np.ndarray]
    decay: float = 0.999
    steps: int = 0
    params: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.params = {k: v.copy() for k, v in self.source.items()}

    def update(self, current: dict[str, np.ndarray]) -> None:
        self.steps += 1
        decay = min(self.decay, (1 + self.steps) / (10 + self.steps))
        for name, value in current.items():
            self.params[name] *= decay
            self.params[name] += (1 - decay) * value


def random_shift_flip(images: np.ndarray, rng: np.random.Generator, *, shift: int = 2) -> np.ndarray:
    """Clothing augmentation (B, H, W): a random shift of up to ``shift`` pixels each way (zeros come
    in), and a left-right mirror for half the images (a shoe pointing left is still a shoe)."""
    b, h, w = images.shape
    padded = np.pad(images, ((0, 0), (shift, shift), (shift, shift)))
    offsets = rng.integers(0, 2 * shift + 1, (2, b))
    rows = offsets[0][:, None] + np.arange(h)[None]
    cols = offsets[1][:, None] + np.arange(w)[None]
    flip = np.asarray(rng.random(b) < 0.5)
    cols = np.where(flip[:, None], cols[:, ::-1], cols)
    return np.asarray(padded[np.arange(b)[:, None, None], rows[:, :, None], cols[:, None, :]])


AUGMENTATIONS = ("digits", "fashion")


def augment_images(images: np.ndarray, kind: str, rng: np.random.Generator, elastic: float = 0.0) -> np.ndarray:
    """Float images (B, H, W) in [0, 1], randomly altered the way ``kind`` (digits, fashion) allows."""
    if kind == "digits":
        return random_warp(images, rng, elastic=elastic)
    if kind == "fashion":
        return random_shift_flip(images, rng)
    raise EngineError(f"augmentation must be one of {', '.join(AUGMENTATIONS)}, got {kind!r}")


@dataclass
class SGD:
    """Stochastic gradient descent with (heavy-ball) momentum and decoupled weight decay on weights."""

    params: dict[str, np.ndarray]
    momentum: float = 0.9
    weight_decay: float = 0.0
    velocity: dict[str, np.ndarray] = field(default_factory=dict)

    def step(self, grads: dict[str, np.ndarray], lr: float) -> None:
        for name, param in self.params.items():
            v = self.velocity.setdefault(name, np.zeros_like(param))
            v *= self.momentum
            v += grads[name]
            if name.endswith(".weight"):
                param -= lr * self.weight_decay * param
            param -= lr * v


OPTIMIZERS = ("adam", "sgd")
# A guess at chance costs ln(classes), about 2.3 for ten; a loss this large means the weights blew up.
DIVERGED_LOSS = 1e3
SCHEDULES = ("cosine", "constant")


# The recipes of the shipped models; `convscope train` falls back to them for unset options.
RECIPES: dict[str, dict[str, Any]] = {
    "digits": {
        "epochs": 150,
        "batch_size": 64,
        "learning_rate": 2e-3,
        "optimizer": "adam",
        "weight_decay": 0.02,
        "augment": "digits",
        "elastic": 16.0,
        "ema_decay": 0.999,
    },
    "fashion": {
        "epochs": 40,
        "batch_size": 64,
        "learning_rate": 2e-3,
        "optimizer": "adam",
        "weight_decay": 0.05,
        "augment": "fashion",
        "elastic": 0.0,
        "ema_decay": 0.999,
    },
}


SMALL_DATA_SET, LARGE_DATA_SET = 500, 3000  # training pictures


def training_defaults(examples: int, augmentable: bool) -> dict[str, Any]:
    """How a job trains when its request leaves it open, by the size of its data set's training split.

    A small data set needs many passes over its few pictures in small batches (20 epochs of 8: 120 steps
    for 48 drawings, where 2 epochs of 32 made 4 and left a fine-tuned output layer at chance), with random
    warps so that it is not learnt by heart; a large one a pass or two in batches of 32. Measured on
    hand-drawn symbols by bench/bench_finetune.py. ``augmentable``: the data set has a warp of its kind
    (digits, drawings, clothing)."""
    if examples < SMALL_DATA_SET:
        size, epochs, batch = "small", 20, 8
    elif examples < LARGE_DATA_SET:
        size, epochs, batch = "medium", 5, 16
    else:
        size, epochs, batch = "large", 2, 32
    augment = augmentable and size != "large"
    words = f"{size} data set: {epochs} epochs, batch {batch}, {'augmented' if augment else 'not augmented'}"
    return {
        "size": size,
        "examples": int(examples),
        "epochs": epochs,
        "batch_size": batch,
        "learning_rate": 3e-3,
        "augment": augment,
        "words": words,
    }


def accuracy_and_confusion(
    network: Network, images: np.ndarray, labels: np.ndarray, batch_size: int = 500
) -> tuple[float, np.ndarray]:
    """Share of correct guesses on uint8 images (N, H, W), and the confusion matrix
    (classes x classes; rows: true class, columns: guess)."""
    guesses = predict_classes(network, images, batch_size)
    confusion = np.zeros((network.classes, network.classes), np.int64)
    np.add.at(confusion, (np.asarray(labels, np.intp), guesses), 1)
    return float((guesses == labels).mean()) if len(labels) else 0.0, confusion


def predict_classes(network: Network, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """The network's guess (N,) for each uint8 image (N, H, W)."""
    if not len(images):
        return np.zeros(0, np.intp)
    batch_size = min(batch_size, network.max_batch())
    return np.concatenate(
        [
            network.forward(to_network_input(images[i : i + batch_size], network.input_shape)).argmax(axis=1)
            for i in range(0, len(images), batch_size)
        ]
    )


def split_validation(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled indices (train, validation) with ``fraction`` of ``n`` held out."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * fraction))
    return order[n_val:], order[:n_val]


class TrainingFailed(EngineError):
    """Training could not go on (the loss became NaN, infinite or huge): the message says what to change."""


@dataclass
class TrainingResult:
    """The trained network (averaged weights when ``ema_decay`` is set), what was seen on the way, and
    whether ``should_stop`` ended the run early."""

    network: Network
    history: list[dict[str, Any]]
    epochs: list[dict[str, Any]]
    stopped: bool
    seconds: float
    steps: int


def _gradients(
    network: Network, x: np.ndarray, labels: np.ndarray, rng: np.random.Generator, frozen: Sequence[str] = ()
) -> tuple[float, np.ndarray, dict[str, np.ndarray]]:
    """loss_and_gradients over a batch, in chunks when the batch would build too large an im2col; none
    for the ``frozen`` layers."""
    chunk = network.max_batch()
    if len(x) <= chunk:
        return network.loss_and_gradients(x, labels, dropout_rng=rng, frozen=frozen)
    total_loss, logits, grads = 0.0, [], dict[str, np.ndarray]()
    for i in range(0, len(x), chunk):
        share = len(x[i : i + chunk]) / len(x)  # the mean loss is the share-weighted mean of the chunks'
        loss, part_logits, part = network.loss_and_gradients(x[i : i + chunk], labels[i : i + chunk], rng, frozen)
        total_loss += loss * share
        logits.append(part_logits)
        for k, g in part.items():
            grads[k] = grads[k] + g * share if k in grads else g * share
    return total_loss, np.concatenate(logits), grads


def train_network(
    network: Network,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    epochs: int,
    batch_size: int = 64,
    learning_rate: float = 2e-3,
    optimizer: str = "adam",
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    schedule: str = "cosine",
    augment: str | None = None,
    elastic: float = 0.0,
    ema_decay: float | None = None,
    seed: int = 0,
    val_images: np.ndarray | None = None,
    val_labels: np.ndarray | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    snapshot_every: int | None = None,
    on_snapshot: Callable[[int, dict[str, np.ndarray]], None] | None = None,
    progress_seconds: float = 0.5,
    frozen: Sequence[str] = (),
) -> TrainingResult:
    """Trains ``network`` in place on uint8 images (N, H, W) or (N, C, H, W) with labels (N,).

    - ``frozen`` layers keep their weights (fine-tuning): only the others' parameters are stepped.
    - ``on_progress({"epoch", "step", "steps", "loss", "accuracy", "examples_per_second",
      "eta_seconds"})`` at least every ``progress_seconds``; loss and accuracy are the running means
      of the epoch so far.
    - ``on_epoch({"epoch", "loss", "accuracy", "val_accuracy", "seconds"})`` after each epoch.
    - ``should_stop()`` is asked between steps; when it says yes the run ends with what it has.
    - ``on_snapshot(step, params)`` at step 0, every ``snapshot_every`` steps and at the end, with a
      copy of the weights as they would be used then (the averaged ones when ``ema_decay`` is set).
    """
    _check_run(optimizer, schedule, epochs, batch_size, learning_rate, len(images), len(labels))
    step_rule = _step_rule(optimizer, trainable(network, frozen), momentum, weight_decay)
    steps_per_epoch = int(np.ceil(len(images) / batch_size))
    run = _Session(
        network,
        images.astype(np.float32) / 255.0,
        np.asarray(labels, np.intp),
        np.random.default_rng(seed),
        step_rule,
        WeightAverage(network.params, decay=ema_decay) if ema_decay else None,
        _Clock(epochs * steps_per_epoch, batch_size, progress_seconds, on_progress),
        _Recipe(batch_size, learning_rate, schedule, augment, elastic, tuple(frozen), snapshot_every),
        should_stop,
        on_snapshot,
    )
    run.snapshot()
    validation = (val_images, np.asarray(val_labels)) if val_images is not None and len(val_images) else None
    epoch_rows = run.epochs(epochs, steps_per_epoch, validation, on_epoch)
    if run.average is not None:
        network.params = {k: v.copy() for k, v in run.average.params.items()}
    run.snapshot()
    clock = run.clock
    return TrainingResult(network, clock.history, epoch_rows, run.stopped, clock.seconds(exact=True), clock.step)


def _step_rule(optimizer: str, stepped: dict[str, np.ndarray], momentum: float, weight_decay: float) -> Adam | SGD:
    """The optimizer over ``stepped``: the network's own arrays, which it updates in place."""
    return Adam(stepped, weight_decay=weight_decay) if optimizer == "adam" else SGD(stepped, momentum, weight_decay)


@dataclass(frozen=True)
class _Recipe:
    """How each step is taken: the batch size, the rate and its schedule, augmentation, frozen layers."""

    batch_size: int
    learning_rate: float
    schedule: str
    augment: str | None
    elastic: float
    frozen: tuple[str, ...]
    snapshot_every: int | None


@dataclass
class _Session:
    """One training run's state between epochs: what steps, what averages, what watches and what stops it."""

    network: Network
    images: np.ndarray  # float, 0..1
    labels: np.ndarray
    rng: np.random.Generator
    step_rule: Adam | SGD
    average: WeightAverage | None
    clock: _Clock
    recipe: _Recipe
    should_stop: Callable[[], bool] | None
    on_snapshot: Callable[[int, dict[str, np.ndarray]], None] | None
    stopped: bool = False

    def current(self) -> dict[str, np.ndarray]:
        """The weights as they would be used now: the averaged ones when ``ema_decay`` is set."""
        return self.average.params if self.average is not None else self.network.params

    def snapshot(self) -> None:
        if self.on_snapshot is not None:
            self.on_snapshot(self.clock.step, {k: v.copy() for k, v in self.current().items()})

    def epochs(
        self,
        epochs: int,
        steps: int,
        validation: tuple[np.ndarray, np.ndarray] | None,
        on_epoch: Callable[[dict[str, Any]], None] | None,
    ) -> list[dict[str, Any]]:
        """Up to ``epochs`` passes (fewer when stopped), each one's row told to ``on_epoch`` and returned."""
        rows: list[dict[str, Any]] = []
        for epoch in range(1, epochs + 1):
            tally = self.epoch(epoch, steps)
            if self.stopped:
                break
            row = tally.row(epoch, self.clock.seconds())
            if validation is not None:
                validated = Network(self.network.spec, self.current(), self.network.meta)
                row["val_accuracy"], _ = accuracy_and_confusion(validated, *validation)
            rows.append(row)
            if on_epoch is not None:
                on_epoch(row)
        return rows

    def epoch(self, epoch: int, steps: int) -> _Tally:
        """One pass over the shuffled pictures, a step a batch; ``stopped`` when ``should_stop`` says so."""
        recipe, clock = self.recipe, self.clock
        order = self.rng.permutation(len(self.images))
        tally = _Tally()
        for batch_step in range(steps):
            if self.should_stop is not None and self.should_stop():
                self.stopped = True
                break
            idx = order[batch_step * recipe.batch_size : (batch_step + 1) * recipe.batch_size]
            batch = self.images[idx]
            if recipe.augment:
                batch = augment_images(batch, recipe.augment, self.rng, recipe.elastic)
            step = _step(
                self.network, batch, self.labels[idx], self.rng, clock.step, recipe.learning_rate, recipe.frozen
            )
            self.step_rule.step(step[2], _rate(recipe.learning_rate, recipe.schedule, clock.step / clock.total))
            if self.average is not None:
                self.average.update(self.network.params)
            tally.add(step[0], step[1], self.labels[idx])
            clock.tick(epoch, tally, last_of_epoch=batch_step == steps - 1)
            if recipe.snapshot_every and clock.step % recipe.snapshot_every == 0 and clock.step < clock.total:
                self.snapshot()
        return tally


def _check_run(
    optimizer: str, schedule: str, epochs: int, batch_size: int, learning_rate: float, images: int, labels: int
) -> None:
    if optimizer not in OPTIMIZERS:
        raise EngineError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    if schedule not in SCHEDULES:
        raise EngineError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    if epochs < 1 or batch_size < 1 or not learning_rate > 0:
        raise EngineError("epochs and batch_size must be at least 1 and learning_rate above 0")
    if images != labels or not images:
        raise EngineError(f"images ({images}) and labels ({labels}) must be as many, and not none")


def _step(
    network: Network,
    batch: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    step: int,
    learning_rate: float,
    frozen: Sequence[str],
) -> tuple[float, np.ndarray, dict[str, np.ndarray]]:
    """One batch forward and back: loss, logits and the gradients of the layers not ``frozen``; a
    diverging loss stops the run in words."""
    x = to_network_input(batch, network.input_shape, scale=1.0)
    loss, logits, grads = _gradients(network, x, labels, rng, frozen)
    if not np.isfinite(loss) or loss > DIVERGED_LOSS:
        raise TrainingFailed(
            f"the loss became {loss:.3g} at step {step + 1}: training diverged, the learning rate "
            f"({learning_rate:g}) is too high for this network; try a tenth of it"
        )
    return loss, logits, grads


def _rate(learning_rate: float, schedule: str, fraction: float) -> float:
    """The learning rate a fraction of the way through the run: constant, or cosine-annealed."""
    return float(learning_rate * (0.5 * (1 + np.cos(np.pi * fraction)) if schedule == "cosine" else 1.0))


@dataclass
class _Tally:
    """An epoch's running loss and accuracy."""

    seen: int = 0
    correct: int = 0
    loss_sum: float = 0.0

    def add(self, loss: float, logits: np.ndarray, labels: np.ndarray) -> None:
        self.seen += len(labels)
        self.correct += int((logits.argmax(axis=1) == labels).sum())
        self.loss_sum += loss * len(labels)

    def point(self) -> dict[str, float]:
        return {"loss": self.loss_sum / max(self.seen, 1), "accuracy": self.correct / max(self.seen, 1)}

    def row(self, epoch: int, seconds: float) -> dict[str, Any]:
        return {"epoch": epoch, **self.point(), "val_accuracy": None, "seconds": seconds}


# a run's curves get at least this many points, however short it is (a 3-second run is still a curve)
POINTS_PER_RUN = 60


class _Clock:
    """Counts steps and reports progress at least every ``every`` seconds, every ``total / POINTS_PER_RUN``
    steps, and at each epoch's end."""

    def __init__(
        self, total: int, batch_size: int, every: float, on_progress: Callable[[dict[str, Any]], None] | None
    ) -> None:
        self.total, self.batch_size, self.every, self.on_progress = total, batch_size, every, on_progress
        self.step_every = max(1, total // POINTS_PER_RUN)
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.started = self.last_report = time.perf_counter()

    def seconds(self, exact: bool = False) -> float:
        elapsed = time.perf_counter() - self.started
        return elapsed if exact else round(elapsed, 2)

    def tick(self, epoch: int, tally: _Tally, last_of_epoch: bool) -> None:
        self.step += 1
        now = time.perf_counter()
        due = now - self.last_report >= self.every or self.step % self.step_every == 0
        if not (due or last_of_epoch or self.step == 1):
            return
        self.last_report = now
        point = {"step": self.step, "epoch": epoch, **tally.point()}
        self.history.append(point)
        if self.on_progress is not None:
            elapsed = now - self.started
            speed = self.step * self.batch_size / elapsed if elapsed > 0 else 0.0
            eta = elapsed / self.step * (self.total - self.step)
            self.on_progress({**point, "steps": self.total, "examples_per_second": speed, "eta_seconds": eta})
