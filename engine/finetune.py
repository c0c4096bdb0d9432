"""Transfer learning: a trained network's layers, a new output layer for new classes, and which layers
keep their weights while the rest train.

Why a few examples are enough: the first conv layers of a digit network have learned strokes, edges and
corners, which any hand-drawn symbol is made of. Keeping them (freezing) leaves only the last layers to
learn how the new classes combine those parts, so there are far fewer numbers to fit from the examples.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.errors import EngineError
from engine.network import Network, initial_parameters
from engine.spec import plan_network


def output_layer(network: Network) -> str:
    """The name of the network's last named layer: the one a fine-tune replaces."""
    return network.layer_names[-1]


def check_freeze(network: Network, freeze: Sequence[str]) -> list[str]:
    """The layers to freeze, checked: each must be a layer of ``network`` with weights, and not its output."""
    weighted = [p.name for p in network.plans if p.kind.has_weights]
    for name in freeze:
        if name not in network.layer_names:
            raise EngineError(
                f"freeze: {network.meta.get('name', 'the model')} has no layer {name!r}; its layers are "
                f"{', '.join(network.layer_names)}"
            )
        if name not in weighted:
            raise EngineError(f"freeze: {name} has no weights to keep (only conv and linear layers do)")
        if name == output_layer(network):
            raise EngineError(f"freeze: {name} is the output layer, which is new for the new classes: it must train")
    return list(dict.fromkeys(freeze))


def check_input_fits(network: Network, input_shape: Sequence[int]) -> None:
    """A data set's pictures fit a network when they have its channels and are no larger than its input
    (smaller ones are padded with black, as the 28x28 digits are padded to LeNet's 32x32)."""
    c, h, w = (int(v) for v in input_shape)
    nc, nh, nw = network.input_shape
    if c != nc or h > nh or w > nw:
        raise EngineError(
            f"start_from: its input is {nc}x{nh}x{nw} but the data set's pictures are {c}x{h}x{w}; "
            "start from a model whose input has the same channels and is at least as large"
        )


def fine_tune_network(
    start: Network, classes: int, input_shape: Sequence[int], freeze: Sequence[str] = (), seed: int = 0
) -> tuple[Network, list[str]]:
    """A copy of ``start`` whose output layer has ``classes`` units (freshly initialised) and whose other
    layers keep their weights; returns it with the checked list of layers to freeze."""
    check_input_fits(start, input_shape)
    frozen = check_freeze(start, freeze)
    last = output_layer(start)
    spec: dict[str, Any] = json.loads(json.dumps(start.spec))
    spec["classes"] = int(classes)
    index = next(p.index for p in start.plans if p.name == last and p.named)
    layer = spec["layers"][index]
    if start.plans[index].kind.draw != "fc":
        raise EngineError(f"start_from: its last layer {last} is a {layer['type']}, not a linear layer to replace")
    layer["units"] = int(classes)
    plans = plan_network(spec)
    fresh = initial_parameters(plans, seed)
    params = {k: (fresh[k] if k.startswith(f"{last}.") else v.copy()) for k, v in start.params.items()}
    return Network(spec, params, {}), frozen


def trainable(network: Network, frozen: Sequence[str]) -> dict[str, np.ndarray]:
    """The parameters that train: every one but the frozen layers' (the same arrays, updated in place), and
    never a BatchNorm's running statistics, which its training passes move themselves."""
    kept = set(frozen)
    return {k: network.params[k] for k in network.trainable_keys if k.split(".")[0] not in kept}
