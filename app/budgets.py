"""The memory a model-using request will take, worked out from the model's plan and the request's
parameters before any work starts. Over ``CONVSCOPE_MAX_REQUEST_BYTES`` the request is refused (422)
with the figure and what to change; under it, the work runs (and stops at its time budget).

Per picture (see :mod:`engine.memory`): a backward pass keeps every layer's output and a gradient
(``training_bytes``); a forward pass that keeps nothing needs one layer at a time (``inference_bytes``);
the maps and unit summaries keep every layer (``kept_bytes``).
"""

from __future__ import annotations

from collections.abc import Collection
from math import prod

from app.config import Settings
from app.errors import Refused
from engine.memory import FLOAT_BYTES as FLOAT
from engine.memory import PASS_BYTES, inference_bytes, kept_bytes, megabytes, training_bytes
from engine.network import Network


def check(settings: Settings, what: str, needed: int, advice: str) -> None:
    """Refuses ``what`` when it needs more than one request may take."""
    if needed > settings.max_request_bytes:
        raise Refused(
            f"{what} would take about {megabytes(needed)} of memory with this model, more than the "
            f"{megabytes(settings.max_request_bytes)} one request may take; {advice}"
        )


def check_predict(settings: Settings, network: Network, with_layers: bool) -> None:
    per_picture = kept_bytes(network.plans) if with_layers else inference_bytes(network.plans)
    check(settings, "a prediction", per_picture, "this model is too large to run here")


def check_explain(settings: Settings, network: Network, methods: Collection[str], samples: int, steps: int) -> None:
    """The methods run one after another: the largest of them is what the request needs."""
    backward = training_bytes(network.plans)
    needs = {"saliency": backward, "gradcam": backward, "smoothgrad": backward * samples}
    needs["integrated_gradients"] = backward * (steps + 1)
    needs["occlusion"] = min(PASS_BYTES, inference_bytes(network.plans) * 1024) + backward
    worst = max(methods, key=lambda m: needs[m])
    check(settings, f"{worst.replace('_', ' ')}", needs[worst], "ask for fewer samples or steps, or fewer methods")


def check_attack(settings: Settings, network: Network) -> None:
    # each step is one picture forward and back, and the layer changes keep every layer twice
    needed = training_bytes(network.plans) + 2 * kept_bytes(network.plans)
    check(settings, "an attack", needed, "this model is too large to attack here")


def _features(network: Network) -> int:
    """Values per picture in the named layer before the last (what the class map and neighbours read)."""
    shape = next((p.output_shape for p in reversed(network.plans[:-1]) if p.named), (0,))
    return prod(shape)


def check_summaries(settings: Settings, network: Network, pictures: int) -> None:
    """The unit cards and the class map: every layer's strongest value and its place, for every test
    picture, plus the features of the layer before the last."""
    units = sum(p.output_shape[0] for p in network.plans if p.named)
    per_picture = units * (FLOAT + 16) + _features(network) * 8
    needed = pictures * per_picture + min(PASS_BYTES, kept_bytes(network.plans) * 256)
    check(settings, "the unit summaries of the test pictures", needed, "use a model with fewer units")


def check_neighbours(settings: Settings, network: Network, pictures: int) -> None:
    needed = pictures * _features(network) * (FLOAT + 8) + min(PASS_BYTES, kept_bytes(network.plans) * 256)
    check(settings, "the features of the training pictures", needed, "use a model whose last layers are smaller")


def check_edit(settings: Settings, network: Network) -> None:
    weights = sum(int(v.nbytes) for v in network.params.values())
    needed = 2 * weights + min(PASS_BYTES, inference_bytes(network.plans) * 500)
    check(settings, "an edit and its test", needed, "this model is too large to edit here")
