"""Training LeNet with its own backward pass: Adam, cosine learning-rate decay, light augmentation."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from engine.conv import conv2d
from engine.data import to_network_input
from engine.model import LeNet


def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = int(3 * sigma)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return (taps / taps.sum()).astype(np.float32)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int, int], sigma: float) -> np.ndarray:
    """Uniform noise in [-1, 1] (B, H, W) blurred by a Gaussian, with two 1-D passes of our own conv2d."""
    taps = _gaussian_kernel(sigma)
    k = len(taps)
    noise = rng.uniform(-1, 1, shape).astype(np.float32)[:, None]
    noise = conv2d(noise, taps.reshape(1, 1, 1, k), padding=(0, k // 2), padding_mode="replicate")
    noise = conv2d(noise, taps.reshape(1, 1, k, 1), padding=(k // 2, 0), padding_mode="replicate")
    return noise[:, 0]


# The recipe of the shipped weights; `convscope train` uses the same defaults.
EPOCHS = 150
BATCH_SIZE = 64
LEARNING_RATE = 2e-3
ELASTIC = 16.0
DROPOUT = 0.25
WEIGHT_DECAY = 0.02


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
    yy, xx = np.meshgrid(np.arange(h) - cy, np.arange(w) - cx, indexing="ij")
    cos, sin = (np.cos(angle) / zoom)[:, None, None], (np.sin(angle) / zoom)[:, None, None]
    dy, dx = yy[None] - ty[:, None, None], xx[None] - tx[:, None, None]
    src_y = cos * dy - sin * dx + cy
    src_x = sin * dy + cos * dx + cx
    if elastic > 0:
        src_y = src_y + elastic * smooth_noise(rng, (b, h, w), sigma)
        src_x = src_x + elastic * smooth_noise(rng, (b, h, w), sigma)

    y0, x0 = np.floor(src_y).astype(np.intp), np.floor(src_x).astype(np.intp)
    fy, fx = (src_y - y0).astype(np.float32), (src_x - x0).astype(np.float32)
    batch = np.arange(b)[:, None, None]

    def sample(yi, xi):
        inside = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
        return images[batch, np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)] * inside

    return (
        sample(y0, x0) * (1 - fy) * (1 - fx)
        + sample(y0, x0 + 1) * (1 - fy) * fx
        + sample(y0 + 1, x0) * fy * (1 - fx)
        + sample(y0 + 1, x0 + 1) * fy * fx
    ).astype(np.float32)


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


def accuracy_and_confusion(
    model: LeNet, images: np.ndarray, labels: np.ndarray, batch_size: int = 500
) -> tuple[float, np.ndarray]:
    """Share of correct guesses, and the 10x10 confusion matrix (rows: true digit, columns: guess)."""
    guesses = (
        np.concatenate(
            [
                model.forward(to_network_input(images[i : i + batch_size])).argmax(axis=1)
                for i in range(0, len(images), batch_size)
            ]
        )
        if len(images)
        else np.zeros(0, np.intp)
    )
    confusion = np.zeros((10, 10), np.int64)
    np.add.at(confusion, (labels.astype(np.intp), guesses), 1)
    return float((guesses == labels).mean()) if len(labels) else 0.0, confusion


def split_validation(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled indices (train, validation) with ``fraction`` of ``n`` held out."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * fraction))
    return order[n_val:], order[:n_val]


def progress_line(epoch: int, epochs: int, done: int, total: int, loss: float, acc: float, width: int = 30) -> str:
    filled = int(width * done / total)
    return (
        f"\repoch {epoch}/{epochs} [{'#' * filled}{'.' * (width - filled)}] "
        f"{done}/{total}  loss {loss:.4f}  acc {acc:.2%}"
    )


def train(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    epochs: int = EPOCHS,
    seed: int = 0,
    batch_size: int = BATCH_SIZE,
    lr: float = LEARNING_RATE,
    augment: bool = True,
    elastic: float = ELASTIC,
    dropout: float = DROPOUT,
    weight_decay: float = WEIGHT_DECAY,
    ema_decay: float = 0.999,
    val_images: np.ndarray | None = None,
    val_labels: np.ndarray | None = None,
    log: Callable[[str], None] = lambda s: print(s, end="", file=sys.stderr, flush=True),
) -> LeNet:
    """Trains a fresh LeNet on uint8 digits (N, 28, 28); reports progress through ``log``."""
    rng = np.random.default_rng(seed)
    model = LeNet.initialize(seed)
    optimizer = Adam(model.params, weight_decay=weight_decay)
    average = WeightAverage(model.params, decay=ema_decay)
    x_all = to_network_input(images)[:, 0]
    steps_per_epoch = int(np.ceil(len(images) / batch_size))
    total_steps = epochs * steps_per_epoch
    started = time.perf_counter()
    val_accuracy = None
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(images))
        seen = correct = 0
        running = 0.0
        for step in range(steps_per_epoch):
            idx = order[step * batch_size : (step + 1) * batch_size]
            batch = random_warp(x_all[idx], rng, elastic=elastic) if augment else x_all[idx]
            loss, logits, grads = model.loss_and_gradients(batch[:, None], labels[idx], dropout=dropout, rng=rng)
            # cosine decay from lr to ~0 over the whole run
            t = ((epoch - 1) * steps_per_epoch + step) / total_steps
            optimizer.step(grads, lr * 0.5 * (1 + np.cos(np.pi * t)))
            average.update(model.params)
            seen += len(idx)
            correct += int((logits.argmax(axis=1) == labels[idx]).sum())
            running += loss * len(idx)
            if step % 10 == 0 or step == steps_per_epoch - 1:
                log(progress_line(epoch, epochs, seen, len(images), running / seen, correct / seen))
        summary = ""
        if val_images is not None and len(val_images):
            val_accuracy, _ = accuracy_and_confusion(LeNet(average.params), val_images, val_labels)
            summary = f"  val acc {val_accuracy:.2%}"
        log(f"{summary}  ({time.perf_counter() - started:.0f} s)\n")
    model = LeNet(average.params)  # the averaged weights generalise better than the last step's
    model.meta.update(
        epochs=epochs,
        ema_decay=ema_decay,
        seed=seed,
        train_size=int(len(images)),
        training_seconds=round(time.perf_counter() - started, 1),
        val_accuracy=val_accuracy,
        val_size=0 if val_images is None else int(len(val_images)),
        parameters=model.parameter_count,
        elastic=elastic,
        dropout=dropout,
        weight_decay=weight_decay,
    )
    return model
