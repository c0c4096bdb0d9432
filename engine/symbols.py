"""Hand-drawn-looking symbols (a check, a cross, a circle, ...) with random variations: strokes of varied
position, size, slant and width, drawn as a person draws on the app's pad (dark ink on white). They stand
in for a learner's own drawings in benchmarks and tests of fine-tuning."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

SYMBOLS = ("check", "cross", "circle", "triangle")


def draw_symbol(kind: str, rng: np.random.Generator, size: int = 140) -> np.ndarray:
    """One drawing (size, size) uint8, 255 background, 0 ink."""
    image = Image.new("L", (size, size), 255)
    pen = ImageDraw.Draw(image)
    scale = rng.uniform(0.55, 0.95) * size
    cx, cy = size / 2 + rng.normal(0, size * 0.05, 2)
    width = int(rng.integers(6, 13))

    def at(x: float, y: float) -> tuple[float, float]:
        jitter = rng.normal(0, size * 0.025, 2)
        return (cx + (x - 0.5) * scale + jitter[0], cy + (y - 0.5) * scale + jitter[1])

    if kind == "check":
        pen.line([at(0.05, 0.55), at(0.38, 0.9), at(0.95, 0.1)], fill=0, width=width, joint="curve")
    elif kind == "cross":
        pen.line([at(0.1, 0.1), at(0.9, 0.9)], fill=0, width=width)
        pen.line([at(0.9, 0.1), at(0.1, 0.9)], fill=0, width=width)
    elif kind == "circle":
        points = [at(0.5 + 0.45 * np.cos(t), 0.5 + 0.42 * np.sin(t)) for t in np.linspace(0, 2 * np.pi, 40)]
        pen.line(points, fill=0, width=width, joint="curve")
    elif kind == "triangle":
        pen.line([at(0.5, 0.08), at(0.92, 0.9), at(0.08, 0.9), at(0.5, 0.08)], fill=0, width=width, joint="curve")
    else:
        raise ValueError(f"unknown symbol {kind!r}; symbols are {', '.join(SYMBOLS)}")
    return np.asarray(image.rotate(rng.uniform(-12, 12), fillcolor=255))
