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


def _serve(args: argparse.Namespace) -> int:
    for name, value in SERVER_THREAD_ENV.items():
        os.environ.setdefault(name, value)
    import uvicorn

    from app.config import get_settings

    settings = get_settings()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=args.workers or settings.workers,
        log_level=settings.log_level,
        access_log=False,  # the app logs each request itself, with its duration
    )
    return 0


RECIPE_OPTIONS = ("epochs", "batch_size", "lr", "elastic", "dropout", "weight_decay")
RECIPE_HELP = "default: the shipped model's recipe, engine/train.py"


def _train(args: argparse.Namespace) -> int:
    from engine.data import load_digits
    from engine.train import accuracy_and_confusion, split_validation, train

    images, labels = load_digits(args.data, split="train")
    train_idx, val_idx = split_validation(len(images), args.val_fraction, args.split_seed)
    print(f"training on {len(train_idx)} digits, validating on {len(val_idx)} ({args.data})", file=sys.stderr)
    # options left unset fall back to train()'s defaults: the recipe of the shipped weights
    recipe = {name: getattr(args, name) for name in RECIPE_OPTIONS if getattr(args, name) is not None}
    model = train(
        images[train_idx],
        labels[train_idx],
        seed=args.seed,
        augment=not args.no_augment,
        val_images=images[val_idx],
        val_labels=labels[val_idx],
        **recipe,
    )
    model.meta.update(version=args.version, trained_on=Path(args.data).name)
    if len(val_idx):
        model.meta["val_accuracy"], _ = accuracy_and_confusion(model, images[val_idx], labels[val_idx])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    print(f"saved {model.parameter_count} parameters to {args.out}", file=sys.stderr)
    return 0


def format_confusion(confusion) -> str:
    header = "true\\guess " + " ".join(f"{d:>5}" for d in range(10))
    rows = [f"{t:>10} " + " ".join(f"{v:>5}" for v in confusion[t]) for t in range(10)]
    return "\n".join([header, *rows])


def _evaluate(args: argparse.Namespace) -> int:
    from engine.data import load_digits
    from engine.model import load_model
    from engine.train import accuracy_and_confusion

    images, labels = load_digits(args.data, split="test")
    model = load_model(args.weights)
    accuracy, confusion = accuracy_and_confusion(model, images, labels)
    print(f"accuracy {accuracy:.2%} on {len(labels)} digits ({args.data})")
    print(format_confusion(confusion))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convscope", description="Teach CNNs by touching them.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the web app with uvicorn")
    serve.add_argument("--host", help="address to bind (default from CONVSCOPE_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default from CONVSCOPE_PORT or 8000)")
    serve.add_argument("--workers", type=int, help="worker processes (default from CONVSCOPE_WORKERS)")
    serve.set_defaults(run=_serve)

    tr = sub.add_parser("train", help="train LeNet on digits (.npz, IDX file or MNIST folder)")
    tr.add_argument(
        "--data", required=True, help=".npz with images/labels, an IDX images file, or a folder of MNIST IDX files"
    )
    tr.add_argument("--epochs", type=int, help=RECIPE_HELP)
    tr.add_argument("--seed", type=int, default=0, help="seed of the initial weights, shuffling and augmentation")
    tr.add_argument(
        "--split-seed",
        type=int,
        default=0,
        help="seed of the validation split (kept apart from --seed so the held-out digits stay held out)",
    )
    tr.add_argument("--out", type=Path, required=True, help="where to write the weights (.npz)")
    tr.add_argument("--batch-size", type=int, help=RECIPE_HELP)
    tr.add_argument("--lr", type=float, help=f"peak Adam learning rate, cosine decay to 0 ({RECIPE_HELP})")
    tr.add_argument("--val-fraction", type=float, default=0.1, help="share of the data held out for validation")
    tr.add_argument("--no-augment", action="store_true", help="turn off random shifts, rotations and scaling")
    tr.add_argument(
        "--elastic",
        type=float,
        help=f"strength of the elastic distortion, Simard et al.'s alpha, 0: off ({RECIPE_HELP})",
    )
    tr.add_argument("--dropout", type=float, help=f"dropout rate on fc1 and fc2 while training ({RECIPE_HELP})")
    tr.add_argument("--weight-decay", type=float, help=f"AdamW decoupled weight decay ({RECIPE_HELP})")
    tr.add_argument("--version", default="custom", help="version string stored with the weights")
    tr.set_defaults(run=_train)

    ev = sub.add_parser("evaluate", help="print accuracy and the confusion matrix")
    ev.add_argument("--data", required=True, help=".npz, IDX images file, or MNIST folder (uses t10k-* files)")
    ev.add_argument("--weights", type=Path, help="weights .npz (default: the shipped model)")
    ev.set_defaults(run=_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (FileNotFoundError, ValueError) as error:
        print(f"convscope {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
