"""Transfer learning on a few drawings, with the defaults a job gets when it leaves its settings out
(engine.train.training_defaults): the digit LeNet fine-tuned (conv1 and conv2 kept, as the training page
starts) against the same network trained from scratch (the page's twin), on three hand-drawn symbols with
3, 6, 10 and 20 drawings per class. The app holds out 20% of each class (rounded up); each run is scored on
those held-out drawings and on 300 fresh ones, over several seeds (a job draws its own).

    .venv/bin/python bench/bench_finetune.py            # 5 seeds per size
    .venv/bin/python bench/bench_finetune.py --seeds 10 --old   # also the old page defaults (2 epochs of 32)

The targets: the fine-tuned model reaches >= 90% held-out with 6 and with 10 drawings per class, and never
trails its from-scratch twin by more than 5 points.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import SHIPPED_MODELS
from engine.finetune import fine_tune_network
from engine.network import Network, initial_parameters, load_network
from engine.preprocess import PAD, preprocess_digit
from engine.spec import plan_network
from engine.symbols import draw_symbol
from engine.train import accuracy_and_confusion, train_network, training_defaults

CLASSES = ("check", "cross", "circle")


def drawings(per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Drawings prepared as the app prepares a digit data set's examples: (N, 28, 28) uint8, class by class."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label, kind in enumerate(CLASSES):
        for _ in range(per_class):
            frame = preprocess_digit(draw_symbol(kind, rng)).pixels[PAD:-PAD, PAD:-PAD]
            images.append(np.round(frame * 255).astype(np.uint8))
            labels.append(label)
    return np.stack(images), np.array(labels, np.uint8)


def app_split(per_class: int, seed: int) -> tuple[np.ndarray, ...]:
    """Training and held-out drawings as a data set of ``per_class`` drawings a class splits them."""
    images, labels = drawings(per_class, seed)
    held = math.ceil(0.2 * per_class)
    train = np.concatenate([np.arange(c * per_class + held, (c + 1) * per_class) for c in range(len(CLASSES))])
    test = np.concatenate([np.arange(c * per_class, c * per_class + held) for c in range(len(CLASSES))])
    return images[train], labels[train], images[test], labels[test]


def trained(network: Network, frozen: list[str], images, labels, recipe: dict, seed: int) -> Network:
    train_network(
        network,
        images,
        labels,
        epochs=recipe["epochs"],
        batch_size=recipe["batch_size"],
        learning_rate=recipe["learning_rate"],
        frozen=frozen,
        augment="digits" if recipe["augment"] else None,
        seed=seed,
    )
    return network


def compare(lenet: Network, per_class: int, seeds: int, recipe: dict | None, fresh) -> None:
    rows = {"fine-tuned": [], "from scratch": []}
    started = time.perf_counter()
    for seed in range(seeds):
        images, labels, held_images, held_labels = app_split(per_class, seed=100 + seed)
        plan = recipe or training_defaults(len(labels), augmentable=True)
        tuned, frozen = fine_tune_network(lenet, len(CLASSES), (1, 28, 28), ["conv1", "conv2"], seed=seed)
        twin = Network(tuned.spec, initial_parameters(plan_network(tuned.spec), seed), {})
        for name, network, keep in (("fine-tuned", tuned, frozen), ("from scratch", twin, [])):
            trained(network, keep, images, labels, plan, seed)
            held = accuracy_and_confusion(network, held_images, held_labels)[0]
            rows[name].append((held, accuracy_and_confusion(network, *fresh)[0]))
    words = plan["words"] if recipe is None else f"{plan['epochs']} epochs, batch {plan['batch_size']}"
    print(f"{per_class:2d} drawings a class ({len(labels)} to train; {words}), {time.perf_counter() - started:.1f} s:")
    for name, results in rows.items():
        held, fresh_scores = np.array(results).T
        print(
            f"   {name:13s} held-out mean {held.mean():6.1%} (min {held.min():6.1%})   "
            f"fresh mean {fresh_scores.mean():6.1%} (min {fresh_scores.min():6.1%})"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--old", action="store_true", help="also the page's old defaults: 2 epochs of 32, no warps")
    args = parser.parse_args()
    lenet = load_network(SHIPPED_MODELS["lenet"])
    fresh = drawings(100, seed=2)
    old = {"epochs": 2, "batch_size": 32, "learning_rate": 3e-3, "augment": False}
    for per_class in (3, 6, 10, 20):
        compare(lenet, per_class, args.seeds, None, fresh)
        if args.old:
            compare(lenet, per_class, args.seeds, old, fresh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
