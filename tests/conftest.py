"""Shared fixtures: the in-repo MNIST sample."""

from pathlib import Path

SAMPLE_PATH = Path(__file__).parent / "data" / "mnist-sample.npz"
