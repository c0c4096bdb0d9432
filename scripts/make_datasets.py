"""Builds the two data sets shipped in engine/datasets/ (run once; the outputs are committed).

    python scripts/make_datasets.py --digits ../shared/data/mnist-digits-8k.npz \
        --fashion /usr/share/datasets/fashion-mnist

- digits.npz: the 8,000 MNIST digits; the test split is exactly the 800 the shipped LeNet held
  out (``split_validation(8000, 0.1, seed=0)``, as ``convscope train --split-seed 0`` draws them).
- fashion.npz: Fashion-MNIST (Debian's dataset-fashion-mnist): 12,000 training images drawn at
  random, 1,200 per class, from the official training file only, and 2,000 test images drawn at
  random from the official test file's first 5,000 (indices 0-4999) only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from engine.data import load_digits
from engine.datasets import DATASET_DIR, DIGIT_NAMES, FASHION_NAMES
from engine.train import split_validation

FASHION_TRAIN_PER_CLASS = 1200
FASHION_TEST = 2000
FASHION_TEST_POOL = 5000


def save(path: Path, classes, train, test, source: str) -> None:
    np.savez_compressed(
        path,
        train_images=train[0],
        train_labels=train[1],
        test_images=test[0],
        test_labels=test[1],
        test_source_index=test[2],
        classes=np.array(classes),
        source=np.array(source),
    )
    print(f"{path}: {len(train[0])} train, {len(test[0])} test, {path.stat().st_size / 1e6:.2f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--digits", type=Path, required=True)
    parser.add_argument("--fashion", type=Path, required=True)
    args = parser.parse_args()

    images, labels = load_digits(args.digits)
    train_idx, test_idx = split_validation(len(images), 0.1, seed=0)
    save(
        DATASET_DIR / "digits.npz",
        DIGIT_NAMES,
        (images[train_idx], labels[train_idx]),
        (images[test_idx], labels[test_idx], test_idx),
        f"{args.digits.name}: 7,200 training digits and the 800 the shipped LeNet held out",
    )

    rng = np.random.default_rng(0)
    train_images, train_labels = load_digits(args.fashion, split="train")
    chosen = np.concatenate(
        [rng.choice(np.flatnonzero(train_labels == k), FASHION_TRAIN_PER_CLASS, replace=False) for k in range(10)]
    )
    chosen = rng.permutation(chosen)
    test_images, test_labels = load_digits(args.fashion, split="test")
    test_idx = np.sort(rng.choice(FASHION_TEST_POOL, FASHION_TEST, replace=False))
    save(
        DATASET_DIR / "fashion.npz",
        FASHION_NAMES,
        (train_images[chosen], train_labels[chosen]),
        (test_images[test_idx], test_labels[test_idx], test_idx),
        "Fashion-MNIST (Zalando, MIT): 12,000 of the official training images, "
        "2,000 of the official test images 0-4999",
    )


if __name__ == "__main__":
    main()
