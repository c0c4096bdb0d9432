"""The ``convscope`` command: serve the app, train the digit model, evaluate it."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# Each worker computes several requests at once on its own threads; BLAS threads on top of
# that only fight over the same cores (measured: filter throughput doubles with one BLAS
# thread per worker). Set before NumPy is first imported here or in uvicorn's workers.
SERVER_THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _server_threads() -> None:
    for name, value in SERVER_THREAD_ENV.items():
        os.environ.setdefault(name, value)


def _serve(args: argparse.Namespace) -> int:
    _server_threads()
    import uvicorn

    from app.config import get_settings
    from app.lifecycle import mark_parent
    from app.logs import uvicorn_log_config

    # the web workers read their settings from the environment: where they listen is part of them (a class
    # page tells students the addresses it is reachable at)
    for name, value in (
        ("CONVSCOPE_HOST", args.host),
        ("CONVSCOPE_PORT", args.port),
        ("CONVSCOPE_WORKERS", args.workers),
    ):
        if value:
            os.environ[name] = str(value)
    get_settings.cache_clear()
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    mark_parent()  # the web workers and the training worker leave if this process is killed outright
    worker = EmbeddedWorker() if settings.embedded_worker else None
    try:
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=settings.log_level,
            access_log=False,  # the app logs each request itself, with its duration
            # h11 bounds a request's head (the request line and headers) while it is read;
            # httptools would read a 200 MB header in full
            http="h11",
            h11_max_incomplete_event_size=settings.max_header_bytes,
            # X-Forwarded-For is believed only from these proxies (uvicorn's own default is loopback only)
            forwarded_allow_ips=settings.forwarded_allow_ips,
            # SIGTERM: open requests and event streams get this long, then the server stops
            timeout_graceful_shutdown=int(settings.shutdown_seconds),
            log_config=uvicorn_log_config(settings.log_level),
        )
    finally:
        if worker is not None:
            worker.stop()
    return 0


class EmbeddedWorker:
    """The training worker `convscope serve` runs beside the web workers: a `convscope worker`
    process of its own (training never runs on a web worker's threads), started again if it dies."""

    RESTART_SECONDS = 2.0

    def __init__(self) -> None:
        import subprocess
        import threading

        self._subprocess = subprocess
        self._stopping = threading.Event()
        self.process = self._start()
        self._watcher = threading.Thread(target=self._watch, name="worker-watcher", daemon=True)
        self._watcher.start()

    def _start(self):
        # the worker leaves by itself if this process dies without stopping it (app.lifecycle)
        return self._subprocess.Popen([sys.executable, "-m", "app.cli", "worker"])

    def _watch(self) -> None:
        while not self._stopping.wait(self.RESTART_SECONDS):
            if self.process.poll() is not None and not self._stopping.is_set():
                print(
                    f"convscope serve: the training worker exited ({self.process.returncode}); starting it again",
                    file=sys.stderr,
                )
                self.process = self._start()

    def stop(self) -> None:
        self._stopping.set()
        self._watcher.join()  # a restart already under way finishes first, so its process is stopped too
        if self.process.poll() is None:
            self.process.terminate()  # its running job ends between two steps, as failed ("the server stopped")
            try:
                self.process.wait(timeout=4)
            except self._subprocess.TimeoutExpired:
                self.process.kill()


def _worker(args: argparse.Namespace) -> int:
    _server_threads()  # training splits each batch across the cores itself, one BLAS thread per slice
    from app.config import get_settings
    from app.jobs.queue import TrainingQueue
    from app.lifecycle import leave_with_parent
    from app.logs import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        # training yields the cores to the web workers: a prediction never waits behind a job
        os.nice(args.nice)
    except OSError:
        pass
    leave_with_parent()
    TrainingQueue(settings).run_worker()
    return 0


RECIPE_OPTIONS = ("epochs", "batch_size", "learning_rate", "optimizer", "weight_decay", "elastic", "ema_decay")
RECIPE_HELP = "default: the shipped model's recipe for the data set (engine/train.py RECIPES)"


def _training_data(args: argparse.Namespace):
    """(train images, labels), (validation images, labels), class names, recipe name and a label for the data."""
    from engine.data import load_digits
    from engine.datasets import DATASETS, DIGIT_NAMES, load_dataset
    from engine.train import split_validation

    source = args.dataset or args.data
    if source is None:
        raise ValueError("say which data to train on: --dataset digits|fashion|PATH")
    if source in DATASETS:
        # the shipped sets keep their test split apart; it is what validation watches
        train, test = load_dataset(source, "train"), load_dataset(source, "test")
        return (train.images, train.labels), (test.images, test.labels), train.classes, source, source
    images, labels = load_digits(source, split="train")
    train_idx, val_idx = split_validation(len(images), args.val_fraction, args.split_seed)
    training, validation = (images[train_idx], labels[train_idx]), (images[val_idx], labels[val_idx])
    return training, validation, DIGIT_NAMES, "digits", Path(source).name


def _architecture(args: argparse.Namespace, recipe_name: str) -> dict:
    import json

    from engine.architectures import ARCHITECTURES, architecture

    choice = args.architecture or ("fashion" if recipe_name == "fashion" else "lenet")
    if choice in ARCHITECTURES:
        return architecture(choice)
    try:
        return json.loads(Path(choice).read_text())
    except OSError as error:
        raise FileNotFoundError(f"cannot read the architecture {choice}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{choice} is not JSON: {error}") from None


def _console_progress(epochs: int):
    """A progress line rewritten in place on stderr, and a line per finished epoch."""

    def report(p: dict) -> None:
        print(
            f"\repoch {p['epoch']}/{epochs}  step {p['step']}/{p['steps']}  loss {p['loss']:.4f}  "
            f"acc {p['accuracy']:.2%}  {p['examples_per_second']:.0f} img/s  eta {p['eta_seconds']:.0f} s ",
            end="",
            file=sys.stderr,
            flush=True,
        )

    def epoch_done(row: dict) -> None:
        val = f"  val acc {row['val_accuracy']:.2%}" if row["val_accuracy"] is not None else ""
        print(f"{val}  ({row['seconds']:.0f} s)", file=sys.stderr)

    return report, epoch_done


def _train(args: argparse.Namespace) -> int:
    from engine.allocator import keep_freed_memory
    from engine.network import build_network
    from engine.train import RECIPES, accuracy_and_confusion, train_network

    keep_freed_memory()  # this process trains: freed arrays stay for the next step

    (images, labels), (val_images, val_labels), classes, recipe_name, data_label = _training_data(args)
    network = build_network(_architecture(args, recipe_name), seed=args.seed)
    recipe = dict(RECIPES[recipe_name])
    # options given on the command line win over the recipe
    recipe.update({name: getattr(args, name) for name in RECIPE_OPTIONS if getattr(args, name) is not None})
    if args.no_augment:
        recipe["augment"] = None
    print(
        f"training {network.parameter_count} parameters on {len(labels)} images, "
        f"validating on {len(val_labels)} ({data_label})",
        file=sys.stderr,
    )

    report, epoch_done = _console_progress(recipe["epochs"])
    result = train_network(
        network,
        images,
        labels,
        seed=args.seed,
        val_images=val_images,
        val_labels=val_labels,
        on_progress=report,
        on_epoch=epoch_done,
        **recipe,
    )
    network.meta.update(
        version=args.version,
        trained_on=data_label,
        dataset=recipe_name,
        labels=list(classes),
        seed=args.seed,
        train_size=int(len(labels)),
        val_size=int(len(val_labels)),
        training_seconds=round(result.seconds, 1),
        parameters=network.parameter_count,
        recipe=recipe,
    )
    if len(val_labels):
        network.meta["val_accuracy"], _ = accuracy_and_confusion(network, val_images, val_labels)
        if recipe_name == data_label:  # a shipped set: validation was its test split
            network.meta["test_accuracy"] = network.meta["val_accuracy"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    network.save(args.out)
    print(f"saved {network.parameter_count} parameters to {args.out}", file=sys.stderr)
    return 0


def scored_model(model, path: Path) -> str:
    """Which network was scored, as its file says: its name (or the file's), the version and what it was
    trained on, e.g. "run3.npz (version custom, trained on digits with seed 7, 63,802 parameters)"."""
    meta = model.meta
    facts = [f"version {meta['version']}"] if "version" in meta else []
    if "trained_on" in meta:
        facts.append(f"trained on {meta['trained_on']}" + (f" with seed {meta['seed']}" if "seed" in meta else ""))
    facts.append(f"{model.parameter_count:,} parameters")
    name = f"{meta['name']}, {Path(path).name}" if "name" in meta else Path(path).name
    return f"{name} ({', '.join(facts)})"


def format_confusion(confusion) -> str:
    classes = len(confusion)
    header = "true\\guess " + " ".join(f"{d:>5}" for d in range(classes))
    rows = [f"{t:>10} " + " ".join(f"{v:>5}" for v in confusion[t]) for t in range(classes)]
    return "\n".join([header, *rows])


def _evaluate(args: argparse.Namespace) -> int:
    from engine import SHIPPED_MODELS, load_network
    from engine.data import load_digits
    from engine.datasets import DATASETS, load_dataset
    from engine.train import accuracy_and_confusion

    source = args.dataset or args.data
    if source is None:
        raise ValueError("say which data to evaluate on: --dataset digits|fashion|PATH")
    if source in DATASETS:
        test = load_dataset(source, "test")
        images, labels = test.images, test.labels
    else:
        images, labels = load_digits(source, split="test")
    data_set = source if source in DATASETS else "digits"
    # by default each data set's own shipped model: the digit network would score clothes at chance
    path = args.weights or SHIPPED_MODELS["fashion" if data_set == "fashion" else "lenet"]
    model = load_network(path)
    trained_on = model.dataset
    if trained_on != data_set:
        raise ValueError(
            f"{args.weights} was trained on {trained_on}, not {data_set}: its classes are not this data set's; "
            f"evaluate it on --dataset {trained_on}, or leave --weights out to use {data_set}'s own model"
        )
    accuracy, confusion = accuracy_and_confusion(model, images, labels)
    print(f"accuracy {accuracy:.2%} on {len(labels)} images ({source}) with {scored_model(model, path)}")
    print(format_confusion(confusion))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convscope", description="Teach CNNs by touching them.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command")

    serve = sub.add_parser("serve", help="run the web app with uvicorn")
    serve.add_argument("--host", help="address to bind (default from CONVSCOPE_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default from CONVSCOPE_PORT or 8000)")
    serve.add_argument("--workers", type=int, help="worker processes (default from CONVSCOPE_WORKERS)")
    serve.set_defaults(run=_serve)

    tr = sub.add_parser("train", help="train a network on a shipped data set, an .npz, an IDX file or an MNIST folder")
    tr.add_argument("--dataset", help="digits or fashion (shipped), or a path as for --data")
    tr.add_argument("--data", help="an .npz with images/labels, an IDX images file, or a folder of MNIST IDX files")
    tr.add_argument(
        "--architecture",
        help="a spec .json or a ready-made name (lenet, tiny, tinyvgg, fashion, small-resnet, mobilenet); "
        "default lenet, fashion for fashion",
    )
    tr.add_argument("--epochs", type=int, help=RECIPE_HELP)
    tr.add_argument("--seed", type=int, default=0, help="seed of the initial weights, shuffling and augmentation")
    tr.add_argument(
        "--split-seed",
        type=int,
        default=0,
        help="seed of the validation split of a --data file (kept apart from --seed so held-out images stay out)",
    )
    tr.add_argument("--out", type=Path, required=True, help="where to write the network (.npz with its spec)")
    tr.add_argument("--batch-size", type=int, help=RECIPE_HELP)
    tr.add_argument("--lr", "--learning-rate", dest="learning_rate", type=float, help=f"peak rate ({RECIPE_HELP})")
    tr.add_argument("--optimizer", choices=("adam", "sgd"), help=RECIPE_HELP)
    tr.add_argument("--val-fraction", type=float, default=0.1, help="share of a --data file held out for validation")
    tr.add_argument("--no-augment", action="store_true", help="turn off the random warps, shifts and flips")
    tr.add_argument(
        "--elastic",
        type=float,
        help=f"strength of the digits' elastic distortion, Simard et al.'s alpha, 0: off ({RECIPE_HELP})",
    )
    tr.add_argument("--weight-decay", type=float, help=f"decoupled weight decay ({RECIPE_HELP})")
    tr.add_argument("--ema-decay", type=float, help=f"moving average of the weights, 0: off ({RECIPE_HELP})")
    tr.add_argument("--version", default="custom", help="version string stored with the weights")
    tr.set_defaults(run=_train)

    wk = sub.add_parser("worker", help="run a training worker: takes jobs from the queue (CONVSCOPE_STORE_URL)")
    wk.add_argument("--nice", type=int, default=10, help="lower the worker's CPU priority by this much")
    wk.set_defaults(run=_worker)

    ev = sub.add_parser("evaluate", help="print accuracy and the confusion matrix")
    ev.add_argument("--dataset", help="digits or fashion (their test split), or a path as for --data")
    ev.add_argument("--data", help=".npz, IDX images file, or MNIST folder (uses t10k-* files)")
    ev.add_argument("--weights", type=Path, help="network .npz (default: the data set's own shipped model)")
    ev.set_defaults(run=_evaluate)
    return parser


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("convscope")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0.1.0"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # `convscope` alone: say what it can do
        parser.print_help()
        return 0
    try:
        return args.run(args)
    except (FileNotFoundError, ValueError) as error:
        print(f"convscope {args.command}: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader left early (`convscope evaluate ... | head -1`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
