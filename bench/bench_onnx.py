"""ONNX in and out on this machine: import time for a ~1 MB model, export time, and the worst logit
difference against onnxruntime (a test-only dependency) over every shipped model and padding mode.

    .venv/bin/python bench/bench_onnx.py

Times are medians of several runs in this process.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import SHIPPED_MODELS
from engine.network import Network, build_network, load_network
from engine.onnx_export import export_onnx
from engine.onnx_import import check_inputs, import_onnx

# about 1 MB of float32 weights: 260,000 parameters, mostly in fc1
ONE_MEGABYTE = {
    "input": [1, 28, 28],
    "classes": 10,
    "layers": [
        {"type": "conv", "filters": 16, "kernel_size": 3, "padding": 1},
        {"type": "relu"},
        {"type": "maxpool", "kernel_size": 2},
        {"type": "conv", "filters": 32, "kernel_size": 3, "padding": 1},
        {"type": "relu"},
        {"type": "maxpool", "kernel_size": 2},
        {"type": "flatten"},
        {"type": "linear", "units": 160},
        {"type": "relu"},
        {"type": "linear", "units": 10},
    ],
}


def median_ms(work: Callable[[], object], repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def worst_difference(network: Network) -> float:
    import onnxruntime

    data = export_onnx(network)
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    x = check_inputs(network.input_shape)
    theirs = session.run(None, {"input": x})[0]
    ours = network.forward(x)
    return float(np.max(np.abs(theirs - ours) / np.maximum(np.abs(theirs), 1e-3)))


def main() -> int:
    big = build_network(ONE_MEGABYTE, seed=0)
    data = export_onnx(big)
    print(f"model: {big.parameter_count:,} parameters, {len(data) / 1e6:.2f} MB as ONNX")
    print(f"import (parse, convert, build, check logits): {median_ms(lambda: import_onnx(data)):8.1f} ms")
    print(f"export (build, onnx.checker, serialise):      {median_ms(lambda: export_onnx(big)):8.1f} ms")
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        print("onnxruntime is not installed: no logit comparison")
        return 0
    networks = {name: load_network(path) for name, path in SHIPPED_MODELS.items()}
    for mode in ("zeros", "reflect", "replicate", "circular", "partial"):
        spec = {
            **ONE_MEGABYTE,
            "layers": [{**ONE_MEGABYTE["layers"][0], "padding_mode": mode}, *ONE_MEGABYTE["layers"][1:]],
        }
        networks[f"1 MB, {mode} padding"] = build_network(spec, seed=1)
    print("worst relative logit difference against onnxruntime:")
    for name, network in networks.items():
        print(f"  {name:28s} {worst_difference(network):.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
