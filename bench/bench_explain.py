"""Explanations and attacks on the shipped LeNet, in-process: timings and how often attacks succeed.

    .venv/bin/python bench/bench_explain.py

Targets: the five attribution methods together under 100 ms for one drawing, FGSM under 10 ms, PGD
with 20 steps under 50 ms. The rates are over the 800 held-out test digits (the last 300 for the
slower targeted attack), with epsilon 0.3.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_engine import median_seconds  # noqa: E402
from engine import load_dataset, load_model, to_network_input  # noqa: E402
from engine.explain import fgsm, gradcam, integrated_gradients, occlusion, pgd, saliency, smoothgrad  # noqa: E402


def median_ms(fn, repeat: int = 15) -> float:
    return median_seconds(fn, repeat, warmup=1) * 1e3


def main() -> None:
    model = load_model()
    test = load_dataset("digits", "test")
    x = to_network_input(test.images)
    one = x[0]
    target = int(model.forward(one[None]).argmax())
    methods = {
        "saliency": lambda: saliency(model, one, target),
        "smoothgrad (25 samples)": lambda: smoothgrad(model, one, target),
        "integrated gradients (128 steps)": lambda: integrated_gradients(model, one, target),
        "grad-cam (every conv layer)": lambda: gradcam(model, one, target),
        "occlusion (6x6, stride 2)": lambda: occlusion(model, one, target),
    }
    total = 0.0
    for name, fn in methods.items():
        ms = median_ms(fn)
        total += ms
        print(f"{name:<36} {ms:7.2f} ms")
    print(f"{'all five':<36} {total:7.2f} ms   (target < 100 ms)")
    print(f"{'FGSM':<36} {median_ms(lambda: fgsm(model, one, 0.1)):7.2f} ms   (target < 10 ms)")
    # epsilon 0.02 never flips this digit, so all 20 steps run
    print(f"{'PGD, 20 steps':<36} {median_ms(lambda: pgd(model, one, 0.02, 20)):7.2f} ms   (target < 50 ms)")

    attacks = [pgd(model, image, 0.3, 20) for image in x]
    flipped = np.mean([a.flipped for a in attacks])
    worst = max(float(np.abs(a.adversarial - image).max()) for a, image in zip(attacks, x))
    words = f"flips {flipped:.1%} of {len(x)} held-out digits; largest change {worst:.4f}"
    print(f"PGD eps 0.3, 20 steps, untargeted: {words}")
    hits = []
    for k, image in enumerate(x[-300:]):
        goal = (int(model.forward(image[None]).argmax()) + 1 + k % 9) % 10
        hits.append(pgd(model, image, 0.3, 40, target=goal).result_class == goal)
    print(f"PGD eps 0.3, 40 steps, targeted: reaches the target for {np.mean(hits):.1%} of 300 digits")


if __name__ == "__main__":
    main()
