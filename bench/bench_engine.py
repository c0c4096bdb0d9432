"""Engine speed on this machine, against PyTorch CPU and scipy.ndimage when they are installed.

    .venv/bin/python bench/bench_engine.py            # prints one table
    .venv/bin/python bench/bench_engine.py --quick    # fewer repeats

Every figure is the median of several timed runs; ratios compare runs made in this
same process, so they hold across machines better than the absolute times do.
PyTorch is never a dependency: `pip install torch==2.13.0` takes the CPU build.
"""

from __future__ import annotations

import argparse
import base64
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import apply_kernel, build_network, conv2d, load_dataset, load_model, preprocess_digit, processes
from engine.allocator import keep_freed_memory
from engine.architectures import FASHION_SPEC, architecture
from engine.datasets import to_network_input
from engine.filters import PRESETS
from engine.network import Network
from engine.parallel import available_cores
from engine.pytorch_export import pytorch_twin
from engine.train import Adam, train_network


def median_seconds(fn: Callable[[], object], repeat: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def torch_twin(network: Network):
    """The same network in PyTorch with the same weights: the engine's own PyTorch export, loaded."""
    return pytorch_twin(network, Path(tempfile.mkdtemp(prefix="convscope-twin-")))


def fmt(seconds: float | None) -> str:
    if seconds is None:
        return f"{'—':>11}"
    return f"{seconds * 1e3:8.3f} ms" if seconds < 1 else f"{seconds:9.3f} s"


def row(name: str, ours: float, refs: dict[str, float | None]) -> str:
    cells = [f"{name:<50}", fmt(ours)]
    for ref in refs.values():
        cells.append(fmt(ref))
        cells.append(f"{ours / ref:6.2f}x" if ref else f"{'—':>7}")
    return " | ".join(cells)


def predict_in_process(repeat: int) -> float:
    """POST /api/predict?activations=true through the ASGI app, no network: decode + preprocess + forward + JSON."""
    import warnings

    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient
    from PIL import Image

    from app.config import Settings
    from app.main import create_app

    canvas = Image.new("L", (280, 280), 255)
    canvas.paste(0, (130, 40, 150, 240))  # a "1" in dark ink
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    body = {"image": "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()}
    settings = Settings(log_level="warning", data_dir=tempfile.mkdtemp(prefix="convscope-bench-"))
    with TestClient(create_app(settings)) as client:
        return median_seconds(lambda: client.post("/api/predict?activations=true", json=body), repeat)


def lenet_rows(model: Network, torch, repeat: int) -> list[str]:
    """LeNet forward at batch 1 and 256 with BLAS's default threads (a notebook) and one BLAS thread
    (the server), and one training step at batch 64; torch runs with its default threads throughout."""
    rng = np.random.default_rng(0)
    twin = torch_twin(model).eval() if torch else None
    rows = []
    for label, limit in (("notebook threads", None), ("1 BLAS thread, as served", 1)):
        for batch in (1, 256):
            x = rng.random((batch, 1, 32, 32), dtype=np.float32)
            with threadpool_limits(limits=limit, user_api="blas"):
                ours = median_seconds(lambda x=x: model.forward(x), repeat)
            ref = None
            if torch:
                xt = torch.from_numpy(x)
                with torch.inference_mode():
                    ref = median_seconds(lambda xt=xt: twin(xt), repeat)
                    np.testing.assert_allclose(model.forward(x), twin(xt).numpy(), rtol=1e-3, atol=1e-3)
            rows.append(row(f"LeNet forward, batch {batch}, {label}", ours, {"torch": ref, "scipy": None}))

    network = build_network(architecture("lenet"), seed=0)
    optimizer = Adam(network.params)
    x = rng.random((64, 1, 32, 32), dtype=np.float32)
    labels = rng.integers(0, 10, 64)

    def our_step():
        _, _, grads = network.loss_and_gradients(x, labels, dropout_rng=rng)
        optimizer.step(grads, 1e-3)

    ours = median_seconds(our_step, repeat)
    ref = None
    if torch:
        twin_train = torch_twin(network).train()
        torch_optimizer = torch.optim.Adam(twin_train.parameters(), lr=1e-3)
        xt, yt = torch.from_numpy(x), torch.from_numpy(labels)

        def torch_step():
            torch_optimizer.zero_grad()
            torch.nn.functional.cross_entropy(twin_train(xt), yt).backward()
            torch_optimizer.step()

        ref = median_seconds(torch_step, repeat)
    rows.append(row("LeNet training step, batch 64 (fwd+bwd+Adam)", ours, {"torch": ref, "scipy": None}))
    return rows


NETWORKS = ("tiny", "lenet", "clothing", "tinyvgg")
BATCHES = (1, 4, 16, 64, 256, 1024)


def onnx_session(network: Network) -> Any:
    """An onnxruntime session of the network's ONNX export (threads as many as cores), or None."""
    try:
        import onnxruntime
    except ImportError:
        return None
    from engine.onnx_export import export_onnx

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = available_cores()
    return onnxruntime.InferenceSession(export_onnx(network), options, providers=["CPUExecutionProvider"])


def training_step(network: Network, x: np.ndarray, labels: np.ndarray) -> Callable[[], None]:
    optimizer = Adam({key: network.params[key] for key in network.trainable_keys})
    rng = np.random.default_rng(0)

    def step() -> None:
        _, _, grads = network.loss_and_gradients(x, labels, dropout_rng=rng)
        optimizer.step(grads, 1e-3)

    return step


def torch_training_step(torch: Any, network: Network, x: np.ndarray, labels: np.ndarray) -> Callable[[], None]:
    twin = torch_twin(network).train()
    optimizer = torch.optim.Adam(twin.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(labels)

    def step() -> None:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(twin(xt), yt).backward()
        optimizer.step()

    return step


def peak_mib(fn: Callable[[], object]) -> float:
    """The most memory NumPy held at once during ``fn`` (tracemalloc sees its arrays), in MiB."""
    import tracemalloc

    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def scaling_row(name: str, batch: int, torch: Any, repeat: int) -> str:
    """One row: a network's forward pass (against PyTorch and onnxruntime) and training step (against
    PyTorch) at one batch size, the multiply-adds per picture, and the training step's peak memory."""
    from engine.spec import multiply_adds

    network = build_network(FASHION_SPEC if name == "clothing" else architecture(name), seed=0)
    rng = np.random.default_rng(0)
    x = rng.random((batch, *network.input_shape), dtype=np.float32)
    labels = rng.integers(0, network.classes, batch)
    repeat = max(3, repeat if batch <= 256 else repeat // 4)
    cells = [f"{name:<9}", f"{batch:>5}", f"{multiply_adds(network.plans) / 1e6:8.2f}"]
    forward = median_seconds(lambda: network.forward(x), repeat)
    references: list[float | None] = [None, None]
    session = onnx_session(network)
    if session is not None:
        references[1] = median_seconds(lambda: session.run(None, {session.get_inputs()[0].name: x}), repeat)
    if torch:
        twin = torch_twin(network).eval()
        with torch.inference_mode():
            references[0] = median_seconds(lambda: twin(torch.from_numpy(x)), repeat)
    cells += [fmt(forward), *(ratio(forward, ref) for ref in references)]
    step = training_step(network, x, labels)
    ours = median_seconds(step, repeat)
    ref = median_seconds(torch_training_step(torch, network.copy(), x, labels), repeat) if torch else None
    cells += [fmt(ours), ratio(ours, ref), f"{whole_step_peak_mib(step):8.1f}"]
    return " | ".join(cells)


def whole_step_peak_mib(step: Callable[[], None]) -> float:
    """The step's peak memory as one process holds it: with the helper processes off for the
    measurement, since tracemalloc sees this process alone."""
    processes.use_helper_processes(False)
    try:
        return peak_mib(step)
    finally:
        processes.use_helper_processes(True)
        processes.wait_until_ready(available_cores() - 1)


def ratio(ours: float, ref: float | None) -> str:
    return f"{ours / ref:6.2f}x" if ref else f"{'—':>7}"


def scaling_table(torch: Any, repeat: int) -> None:
    """How cost grows with the work: LeNet over batch sizes, then every preset at batch 64 and 256."""
    print("\nForward pass and training step (fwd+bwd+Adam) against batch size and network size;")
    print("ratios are convscope / reference in this run; peak = most NumPy memory during one step")
    print("(training steps of 32 or more split across the cores in helper processes, as in training)")
    columns = [f"{'network':<9}", "batch", "MMAC/pic", f"{'forward':>11}", "  torch", "    ort", f"{'train step':>11}"]
    header = " | ".join([*columns, "  torch", "peak MiB"])
    print(header)
    print("-" * len(header))
    rows = [("lenet", batch) for batch in BATCHES]
    rows += [(name, batch) for batch in (64, 256) for name in NETWORKS if name != "lenet"]
    for name, batch in rows:
        print(scaling_row(name, batch, torch, repeat), flush=True)


def epoch_seconds(augment: str | None) -> float:
    """One epoch of LeNet on the 7,200 training digits at batch 64, with the app's augmentation or none."""
    train = load_dataset("digits", "train")
    network = build_network(architecture("lenet"), seed=0)
    started = time.perf_counter()
    train_network(network, train.images, train.labels, epochs=1, batch_size=64, learning_rate=3e-3, augment=augment)
    return time.perf_counter() - started


def torch_epoch_seconds(torch: Any) -> float:
    """The same epoch in PyTorch (shuffled batches of 64, Adam), without augmentation."""
    train = load_dataset("digits", "train")
    network = build_network(architecture("lenet"), seed=0)
    x = torch.from_numpy(to_network_input(train.images))
    labels = torch.from_numpy(np.asarray(train.labels, np.int64))
    twin = torch_twin(network).train()
    optimizer = torch.optim.Adam(twin.parameters(), lr=3e-3)
    started = time.perf_counter()
    for batch in torch.randperm(len(x)).split(64):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(twin(x[batch]), labels[batch]).backward()
        optimizer.step()
    return time.perf_counter() - started


def epoch_rows(torch: Any) -> list[str]:
    none = {"torch": None, "scipy": None}
    plain = {"torch": torch_epoch_seconds(torch) if torch else None, "scipy": None}
    return [
        row("LeNet, 1 epoch on 7,200 digits, augmented (wall)", epoch_seconds("digits"), none),
        row("LeNet, 1 epoch on 7,200 digits, as they are (wall)", epoch_seconds(None), plain),
    ]


def optional_references() -> tuple[Any, Any]:
    """PyTorch (with as many threads as cores) and scipy.ndimage, or None where not installed."""
    try:
        import torch

        torch.set_num_threads(available_cores())
    except ImportError:
        torch = None
    try:
        from scipy import ndimage
    except ImportError:
        ndimage = None
    return torch, ndimage


def conv_row(torch: Any, ndimage: Any, rng: np.random.Generator, repeat: int) -> str:
    """The same 3x3 kernel on each colour channel of a 512x512 picture, as the filter playground does."""
    image = rng.random((1, 3, 512, 512), dtype=np.float32)
    kernel = rng.random((3, 3), dtype=np.float32)
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
    return row("conv2d 3x3 on 512x512 RGB", ours, {"torch": ref_torch, "scipy": ref_scipy})


def filter_row(ndimage: Any, rng: np.random.Generator, repeat: int) -> str:
    photo = (rng.random((512, 512, 3)) * 255).astype(np.uint8)
    blur = PRESETS["gaussian_blur"].kernel
    ours = median_seconds(lambda: apply_kernel(photo, blur), repeat)
    ref_scipy = None
    if ndimage:

        def scipy_blur() -> np.ndarray:
            planes = [ndimage.correlate(photo[..., c].astype(np.float32), blur, mode="constant") for c in range(3)]
            return np.stack([np.clip(np.rint(p), 0, 255) for p in planes], axis=-1).astype(np.uint8)

        ref_scipy = median_seconds(scipy_blur, repeat)
    return row("filter apply (gaussian) 512x512 RGB", ours, {"torch": None, "scipy": ref_scipy})


def app_rows(repeat: int) -> list[str]:
    drawing = np.full((280, 280), 255.0)
    drawing[40:240, 130:150] = 0
    none = {"torch": None, "scipy": None}
    return [
        row("preprocess a 280x280 drawing", median_seconds(lambda: preprocess_digit(drawing), repeat), none),
        row("API predict + activations, in-process", predict_in_process(repeat), none),
    ]


def print_table(results: list[str], torch: Any) -> None:
    columns = [("operation", "<50"), ("convscope", ">11"), ("torch", ">11"), ("ratio", ">7"), ("scipy", ">11")]
    header = " | ".join([*(f"{name:{fmt}}" for name, fmt in columns), f"{'ratio':>7}"])
    print(f"numpy {np.__version__}" + (f", torch {torch.__version__}" if torch else ", torch not installed"))
    print(
        f"{available_cores()} cores; rows after the epoch run with one BLAS thread (as `convscope serve` "
        f"does); torch with {torch.get_num_threads() if torch else 0} threads"
    )
    print("ratio = convscope time / reference time (lower is better; 1.00x = as fast)")
    print(header)
    print("-" * len(header))
    print("\n".join(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    repeat = 5 if parser.parse_args().quick else 25
    torch, ndimage = optional_references()
    keep_freed_memory()  # as the training worker does
    processes.wait_until_ready(available_cores() - 1)  # steps timed as in a worker that has trained before
    rng = np.random.default_rng(0)
    results = lenet_rows(load_model(), torch, repeat)
    results += epoch_rows(torch)
    # the rest runs as `convscope serve` does: one BLAS thread per process
    limit = threadpool_limits(limits=1, user_api="blas")
    results += [conv_row(torch, ndimage, rng, repeat), filter_row(ndimage, rng, repeat), *app_rows(repeat)]
    limit.restore_original_limits()
    print_table(results, torch)
    scaling_table(torch, repeat)


if __name__ == "__main__":
    main()
