"""Transfer learning on a few drawings: fine-tuning the digit LeNet against training a small network from
scratch, on three hand-drawn symbols with 15 examples each (12 to train, as the app holds out 20%), scored
on 300 fresh drawings.

    .venv/bin/python bench/bench_finetune.py

The issue's target: the fine-tuned LeNet reaches >= 90% on held-out drawings within 30 s on 2 cores.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import SHIPPED_MODELS, build_network
from engine.finetune import fine_tune_network
from engine.network import load_network
from engine.preprocess import PAD, preprocess_digit
from engine.symbols import draw_symbol
from engine.train import accuracy_and_confusion, train_network

CLASSES = ("check", "cross", "circle")
SCRATCH = {
    "input": [1, 28, 28],
    "classes": 3,
    "layers": [
        {"type": "conv", "filters": 8, "kernel_size": 5},
        {"type": "relu"},
        {"type": "maxpool", "kernel_size": 2},
        {"type": "conv", "filters": 16, "kernel_size": 5},
        {"type": "relu"},
        {"type": "maxpool", "kernel_size": 2},
        {"type": "flatten"},
        {"type": "linear", "units": 3},
    ],
}


def drawings(per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Drawings prepared as the app prepares a digit data set's examples: (N, 28, 28) uint8."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label, kind in enumerate(CLASSES):
        for _ in range(per_class):
            frame = preprocess_digit(draw_symbol(kind, rng)).pixels[PAD:-PAD, PAD:-PAD]
            images.append(np.round(frame * 255).astype(np.uint8))
            labels.append(label)
    return np.stack(images), np.array(labels, np.uint8)


def run(name: str, network, frozen, images, labels, test, epochs: int, rate: float) -> None:
    start = time.perf_counter()
    train_network(
        network, images, labels, epochs=epochs, batch_size=8, learning_rate=rate, frozen=frozen, augment="digits"
    )
    seconds = time.perf_counter() - start
    accuracy, _ = accuracy_and_confusion(network, *test)
    print(f"{name:44s} {accuracy:6.1%} on {len(test[1])} fresh drawings, trained in {seconds:5.1f} s")


def main() -> int:
    test = drawings(100, seed=2)
    lenet = load_network(SHIPPED_MODELS["lenet"])
    for per_class in (12, 2):
        images, labels = drawings(per_class, seed=1)
        print(f"{per_class} training drawings per class:")
        for freeze in (["conv1", "conv2"], []):
            network, frozen = fine_tune_network(lenet, 3, (1, 28, 28), freeze, seed=0)
            label = f"  fine-tuned LeNet, {'+'.join(frozen) or 'nothing'} frozen"
            run(label, network, frozen, images, labels, test, epochs=10, rate=3e-3)
        scratch = build_network(SCRATCH, seed=0)
        run("  from scratch (conv 8 -> conv 16 -> fc 3)", scratch, [], images, labels, test, 10, 3e-3)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
