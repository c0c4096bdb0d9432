"""ONNX in and out on this machine: import time for a ~1 MB model, export time, and the worst logit
difference against onnxruntime (a test-only dependency) over every shipped model and padding mode; then
two imported 224 x 224 models of our own (a plain CNN and a MobileNet-style one, as files the way
exporters write them): one picture's forward pass against onnxruntime's, and the drawing page's request
(POST /api/predict?activations=true with a 224 x 224 frame: every layer's maps, as JSON) end to end.

    .venv/bin/python bench/bench_onnx.py

Times are medians (p50) of several runs in this process; targets: the page's request p50 at most 150 ms
for the plain CNN and 300 ms for the MobileNet-style one, the forward pass within 3x onnxruntime.
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
from tests.onnx_collection import File

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


def plain_224() -> bytes:
    """Four 3x3 conv + ReLU + 2x2 max pool stages (16, 32, 64, 64 maps) on 224 x 224 colour, global pooling."""
    f = File(30)
    for cin, cout in ((3, 16), (16, 32), (32, 64), (64, 64)):
        f.conv(cin, cout, 3, pads=[1, 1, 1, 1])
        f.op("Relu")
        f.op("MaxPool", kernel_shape=[2, 2], strides=[2, 2])
    f.op("GlobalAveragePool")
    f.op("Flatten", axis=1)
    f.gemm(64, 10)
    return f.bytes(["N", 3, 224, 224], 17)


def mobilenet_224() -> bytes:
    """MobileNet's pattern at half width: a 3x3 stem at stride 2, six depthwise-separable blocks (16 to 256
    maps, four at stride 2), each conv with BatchNorm and ReLU6, global pooling."""
    f = File(31)

    def conv_bn(cin: int, cout: int, k: int, stride: int = 1, group: int = 1) -> None:
        f.conv(cin, cout, k, group=group, strides=[stride, stride], pads=[k // 2] * 4, bias=False)
        f.bn(cout)
        f.op("Clip", f.const(0.0), f.const(6.0))

    conv_bn(3, 16, 3, 2)
    for cin, cout, stride in ((16, 32, 1), (32, 64, 2), (64, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2)):
        conv_bn(cin, cin, 3, stride, group=cin)
        conv_bn(cin, cout, 1)
    f.op("GlobalAveragePool")
    f.op("Flatten", axis=1)
    f.gemm(256, 10)
    return f.bytes(["N", 3, 224, 224], 17)


def page_request_ms(data: bytes) -> float:
    """p50 of the drawing page's request for an imported model: a 224 x 224 frame, every layer's maps."""
    from fastapi.testclient import TestClient

    from app.main import create_app

    with TestClient(create_app()) as client:
        token = client.post("/api/workspace").json()["token"]
        client.headers["Authorization"] = f"Bearer {token}"
        model = client.post("/api/models/import", files={"file": ("m.onnx", data)}).json()["id"]
        frame = np.random.default_rng(0).random((3, 224, 224)).round(3).tolist()

        def ask() -> None:
            answer = client.post(f"/api/predict?model={model}&activations=true", json={"frame": frame})
            assert answer.status_code == 200, answer.text

        return median_ms(ask, repeats=9)


def large_models() -> None:
    import onnxruntime

    print("\n224 x 224 imports: one picture's forward pass, and the page's request with every layer's maps")
    for name, data, target in (("plain CNN", plain_224(), 150), ("MobileNet-style", mobilenet_224(), 300)):
        network = import_onnx(data).network
        x = np.random.default_rng(1).random((1, 3, 224, 224), dtype=np.float32)
        session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        ours = median_ms(lambda net=network, x=x: net.forward(x), 15)
        theirs = median_ms(lambda run=session.run, x=x: run(None, {"input": x}), 15)
        page = page_request_ms(data)
        macs = sum(plan.kind.multiply_adds(plan) for plan in network.plans)
        print(
            f"  {name:16s} {macs / 1e6:6.0f} M multiply-adds | forward {ours:7.1f} ms, onnxruntime {theirs:6.1f} ms "
            f"({ours / theirs:4.1f}x, target 3x) | page request p50 {page:6.1f} ms (target {target} ms)"
        )


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
    large_models()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
