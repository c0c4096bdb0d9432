"""Engine speed on this machine, against PyTorch CPU and scipy.ndimage when they are installed.

    .venv/bin/python bench/bench_engine.py            # prints one table
    .venv/bin/python bench/bench_engine.py --quick    # fewer repeats

Every figure is the median of several timed runs; ratios compare runs made in this
same process, so they hold across machines better than the absolute times do.
PyTorch is never a dependency: `pip install torch==2.13.0` takes the CPU build.
"""

from __future__ import annotations

import os

# One BLAS thread per process, as `convscope serve` runs: the engine uses the cores itself
# (requests in parallel in the server, batch slices in LeNet.forward). Set before NumPy loads.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import apply_kernel, conv2d, load_model, preprocess_digit
from engine.filters import PRESETS


def median_seconds(fn: Callable[[], object], repeat: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def torch_lenet(model):
    import torch
    import torch.nn.functional as F

    p = {k: torch.from_numpy(v) for k, v in model.params.items()}

    def forward(x):
        with torch.inference_mode():
            a = F.max_pool2d(F.relu(F.conv2d(x, p["conv1.weight"], p["conv1.bias"])), 2)
            a = F.max_pool2d(F.relu(F.conv2d(a, p["conv2.weight"], p["conv2.bias"])), 2)
            a = F.relu(F.linear(a.flatten(1), p["fc1.weight"], p["fc1.bias"]))
            a = F.relu(F.linear(a, p["fc2.weight"], p["fc2.bias"]))
            return F.linear(a, p["fc3.weight"], p["fc3.bias"])

    return forward


def fmt(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds * 1e3:8.3f} ms" if seconds < 1 else f"{seconds:8.3f} s "


def row(name: str, ours: float, refs: dict[str, float | None]) -> str:
    cells = [f"{name:<34}", fmt(ours)]
    for ref in refs.values():
        cells.append(fmt(ref))
        cells.append(f"{ours / ref:6.2f}x" if ref else "     —")
    return " | ".join(cells)


def predict_in_process(repeat: int) -> float:
    """POST /api/predict?activations=true through the ASGI app, no network: decode + preprocess + forward + JSON."""
    from fastapi.testclient import TestClient
    from PIL import Image

    from app.config import Settings
    from app.main import create_app

    canvas = Image.new("L", (280, 280), 255)
    canvas.paste(0, (130, 40, 150, 240))  # a "1" in dark ink
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    import base64

    body = {"image": "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()}
    with TestClient(create_app(Settings(log_level="warning"))) as client:
        return median_seconds(lambda: client.post("/api/predict?activations=true", json=body), repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeat = 5 if args.quick else 25

    try:
        import torch

        torch.set_num_threads(max(1, len(__import__("os").sched_getaffinity(0))))
    except ImportError:
        torch = None
    try:
        from scipy import ndimage
    except ImportError:
        ndimage = None

    rng = np.random.default_rng(0)
    model = load_model()
    lenet_torch = torch_lenet(model) if torch else None
    results = []

    for batch in (1, 256):
        x = rng.random((batch, 1, 32, 32), dtype=np.float32)
        ours = median_seconds(lambda x=x: model.forward(x), repeat)
        ref = None
        if torch:
            xt = torch.from_numpy(x)
            ref = median_seconds(lambda xt=xt: lenet_torch(xt), repeat)
            np.testing.assert_allclose(model.forward(x), lenet_torch(xt).numpy(), rtol=1e-3, atol=1e-3)
        results.append(row(f"LeNet forward, batch {batch}", ours, {"torch": ref, "scipy": None}))

    image = rng.random((1, 3, 512, 512), dtype=np.float32)
    kernel = rng.random((3, 3), dtype=np.float32)
    # the same 3x3 kernel on each colour channel separately (as the filter playground does)
    ours = median_seconds(lambda: conv2d(image.reshape(3, 1, 512, 512), kernel[None, None], padding=1), repeat)
    ref_torch = ref_scipy = None
    if torch:
        import torch.nn.functional as F

        it, kt = torch.from_numpy(image.reshape(3, 1, 512, 512)), torch.from_numpy(kernel[None, None])
        ref_torch = median_seconds(lambda: F.conv2d(it, kt, padding=1), repeat)
    if ndimage:
        ref_scipy = median_seconds(
            lambda: [ndimage.correlate(image[0, c], kernel, mode="constant") for c in range(3)], repeat
        )
    results.append(row("conv2d 3x3 on 512x512 RGB", ours, {"torch": ref_torch, "scipy": ref_scipy}))

    photo = (rng.random((512, 512, 3)) * 255).astype(np.uint8)
    blur = PRESETS["gaussian_blur"].kernel
    ours = median_seconds(lambda: apply_kernel(photo, blur), repeat)
    ref_scipy = None
    if ndimage:
        ref_scipy = median_seconds(
            lambda: np.stack(
                [
                    np.clip(np.rint(ndimage.correlate(photo[..., c].astype(np.float32), blur, mode="constant")), 0, 255)
                    for c in range(3)
                ],
                axis=-1,
            ).astype(np.uint8),
            repeat,
        )
    results.append(row("filter apply (gaussian) 512x512 RGB", ours, {"torch": None, "scipy": ref_scipy}))

    drawing = np.full((280, 280), 255.0)
    drawing[40:240, 130:150] = 0
    ours = median_seconds(lambda: preprocess_digit(drawing), repeat)
    results.append(row("preprocess a 280x280 drawing", ours, {"torch": None, "scipy": None}))
    results.append(
        row("API predict + activations, in-process", predict_in_process(repeat), {"torch": None, "scipy": None})
    )

    header = " | ".join(
        [f"{'operation':<34}", f"{'convscope':>11}", f"{'torch':>11}", "ratio ", f"{'scipy':>11}", "ratio "]
    )
    print(f"numpy {np.__version__}" + (f", torch {torch.__version__}" if torch else ", torch not installed"))
    print(
        f"{os.cpu_count()} cores; one BLAS thread per process (as `convscope serve` runs), torch with "
        f"{torch.get_num_threads() if torch else 0} threads"
    )
    print("ratio = convscope time / reference time (lower is better; 1.00x = as fast)")
    print(header)
    print("-" * len(header))
    print("\n".join(results))


if __name__ == "__main__":
    main()
