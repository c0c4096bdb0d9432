"""Why did the network decide? Attributions and adversarial examples for any :class:`Network`.

Every function takes one input ``x`` shaped like the network's input, (C, H, W), floats in [0, 1],
and a ``target`` class; maps come back in the input's shape (raw signed values) unless said.

- :func:`saliency`: ``d logit_target / d x`` (Simonyan et al., 2014).
- :func:`smoothgrad`: the mean saliency over noisy copies of the input (Smilkov et al., 2017).
- :func:`integrated_gradients`: ``(x - x0) * mean_a d logit / d x (x0 + a (x - x0))`` along the
  straight path from a black baseline ``x0`` (Sundararajan et al., 2017); the attributions add up
  to ``logit(x) - logit(x0)`` (completeness), up to the path's discretisation.
- :func:`gradcam`: per conv layer, ``ReLU(sum_k alpha_k A_k)`` with ``alpha_k`` the mean gradient of
  the target's logit over map ``A_k`` (Selvaraju et al., 2017), and upsampled to the input.
- :func:`occlusion`: how much the target's probability drops when a patch covers each place
  (Zeiler and Fergus, 2014), all patches in one batch.
- :func:`fgsm` and :func:`pgd`: the smallest-looking changes that change the decision (Goodfellow et
  al., 2015; Madry et al., 2018), inside an L-infinity ball of radius ``epsilon`` and [0, 1].

Each works on whole batches inside (noisy copies, path points, patches) so it costs a few forward
and backward passes, not one per sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.errors import EngineError
from engine.layers import softmax
from engine.memory import PASS_BYTES, batch_within, inference_bytes
from engine.network import Network

BASELINES = {"black": 0.0, "grey": 0.5}


def _one(network: Network, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.shape != network.input_shape:
        expected = "x".join(map(str, network.input_shape))
        raise EngineError(f"the input must be the network's {expected}, got {'x'.join(map(str, x.shape))}")
    return x


def _onehot(network: Network, n: int, target: int) -> np.ndarray:
    seed = np.zeros((n, network.classes), np.float32)
    seed[:, int(network.check_target(target, 1)[0])] = 1
    return seed


def saliency(network: Network, x: np.ndarray, target: int) -> np.ndarray:
    """``d logit_target / d x``, shaped like ``x``."""
    return np.asarray(network.input_gradient(_one(network, x)[None], target)[0])


def smoothgrad(
    network: Network, x: np.ndarray, target: int, noise: float = 0.15, samples: int = 25, seed: int = 0
) -> np.ndarray:
    """The mean of ``d logit_target / d x`` at ``samples`` copies of ``x`` plus Gaussian noise of standard
    deviation ``noise`` times the input's range (seeded, so the map is the same every time)."""
    x = _one(network, x)
    if not 0 <= noise <= 1 or not 1 <= samples <= 256:
        raise EngineError(f"noise must be in [0, 1] and samples in 1..256, got {noise} and {samples}")
    spread = float(x.max() - x.min()) or 1.0
    rng = np.random.default_rng(seed)
    noisy = x[None] + rng.normal(0.0, noise * spread, (samples, *x.shape)).astype(np.float32)
    return np.asarray(network.input_gradient(noisy, target).mean(axis=0))


@dataclass(frozen=True)
class IntegratedGradients:
    """``attribution`` shaped like the input; its ``sum`` should equal ``logit_difference``."""

    attribution: np.ndarray
    baseline: str
    steps: int
    sum: float
    logit_difference: float


def integrated_gradients(
    network: Network, x: np.ndarray, target: int, steps: int = 128, baseline: str = "black"
) -> IntegratedGradients:
    """``(x - x0) * mean over the path of the gradient``, with the trapezoid rule over ``steps`` intervals."""
    x = _one(network, x)
    if baseline not in BASELINES:
        raise EngineError(f"baseline must be one of {', '.join(BASELINES)}, got {baseline!r}")
    if not 1 <= steps <= 512:
        raise EngineError(f"steps must be 1..512, got {steps}")
    x0 = np.full_like(x, BASELINES[baseline])
    alphas = np.linspace(0.0, 1.0, steps + 1, dtype=np.float32)
    path = x0[None] + alphas[:, None, None, None] * (x - x0)[None]
    logits, grads = network.backward_to_input(path, lambda logits: _onehot(network, len(logits), target))
    weights = np.full(steps + 1, 1.0 / steps, np.float32)
    weights[[0, -1]] /= 2  # trapezoid: the ends count half
    attribution = (x - x0) * np.tensordot(weights, grads, axes=1)
    difference = float(logits[-1, target] - logits[0, target])
    return IntegratedGradients(attribution, baseline, steps, float(attribution.sum()), difference)


def upsample(grid: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a 2-D map to ``size`` (H, W), sampling at cell centres as image resizers do."""
    h, w = grid.shape
    ys = np.clip((np.arange(size[0]) + 0.5) * h / size[0] - 0.5, 0, h - 1)
    xs = np.clip((np.arange(size[1]) + 0.5) * w / size[1] - 0.5, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x1] * fx
    bottom = grid[y1][:, x0] * (1 - fx) + grid[y1][:, x1] * fx
    return np.asarray(top * (1 - fy) + bottom * fy)


@dataclass(frozen=True)
class GradCam:
    """One conv layer's class-activation map: ``map`` at the layer's size (h, w), non-negative, and
    ``upsampled`` to the input's (H, W)."""

    layer: str
    map: np.ndarray
    upsampled: np.ndarray


def gradcam(network: Network, x: np.ndarray, target: int) -> dict[str, GradCam]:
    """Grad-CAM for every conv layer, from one forward and one backward pass."""
    x = _one(network, x)
    at_layers: dict[str, np.ndarray] = {}
    network.backward_to_input(x[None], lambda logits: _onehot(network, 1, target), at_layers)
    activations = network.activations(x[None])
    _, height, width = network.input_shape
    maps = {}
    for plan in network.plans:
        if not plan.named or plan.kind.draw != "conv":
            continue
        maps_k, grads_k = activations[plan.name][0], at_layers[plan.name][0]  # (K, h, w) each
        alphas = grads_k.mean(axis=(1, 2))  # how much each map matters for the target
        cam = np.maximum(np.tensordot(alphas, maps_k, axes=1), 0)
        maps[plan.name] = GradCam(plan.name, cam, upsample(cam, (height, width)))
    return maps


@dataclass(frozen=True)
class Occlusion:
    """``map`` (rows, columns of patch positions): the target's probability without the patch minus with
    it; positive where covering hurts the guess."""

    patch: int
    stride: int
    value: float
    map: np.ndarray
    probability: float


def occlusion(
    network: Network, x: np.ndarray, target: int, patch: int = 6, stride: int = 2, value: float = 0.0
) -> Occlusion:
    """Covers each ``patch`` x ``patch`` square (``stride`` apart) with ``value`` (0 black, 0.5 grey),
    the positions in batched forward passes of at most ``PASS_BYTES``."""
    x = _one(network, x)
    c, h, w = x.shape
    if not 1 <= patch <= min(h, w) or not 1 <= stride <= min(h, w):
        raise EngineError(f"patch and stride must be 1..{min(h, w)}, got {patch} and {stride}")
    if not 0 <= value <= 1:
        raise EngineError(f"value must be in [0, 1], got {value}")
    rows, cols = (h - patch) // stride + 1, (w - patch) // stride + 1
    places = list(np.ndindex(rows, cols))
    chunk = batch_within(inference_bytes(network.plans) + x.nbytes, PASS_BYTES, 1024)
    probs = np.empty(len(places))
    for start in range(0, len(places), chunk):
        batch = np.repeat(x[None], len(places[start : start + chunk]), axis=0)
        for k, (i, j) in enumerate(places[start : start + chunk]):
            batch[k, :, i * stride : i * stride + patch, j * stride : j * stride + patch] = value
        probs[start : start + len(batch)] = network.predict_proba(batch)[:, target]
    base = float(network.predict_proba(x[None])[0, target])
    return Occlusion(patch, stride, value, (base - probs).reshape(rows, cols), base)


# -- adversarial examples ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    """The adversarial input (in [0, 1], within ``epsilon`` of the original in every pixel), what the
    network says of both, and how many steps it took."""

    adversarial: np.ndarray
    original_class: int
    original_probabilities: np.ndarray
    result_class: int
    result_probabilities: np.ndarray
    flipped: bool
    steps_taken: int


def _loss_gradient(network: Network, x: np.ndarray, label: int) -> tuple[np.ndarray, np.ndarray]:
    """The logits and d cross-entropy(logits, label) / d x for one input."""
    onehot = _onehot(network, 1, label)
    logits, grad = network.backward_to_input(
        x[None], lambda logits: (softmax(logits.astype(np.float64)) - onehot).astype(np.float32)
    )
    return logits[0], grad[0]


def _check_attack(network: Network, epsilon: float, target: int | None) -> None:
    if not 0 <= epsilon <= 1:
        raise EngineError(f"epsilon must be in [0, 1], got {epsilon}")
    if target is not None:
        network.check_target(target, 1)


def _succeeded(guess: int, original: int, target: int | None) -> bool:
    return guess == target if target is not None else guess != original


def pgd(
    network: Network,
    x: np.ndarray,
    epsilon: float,
    steps: int = 20,
    target: int | None = None,
    step_size: float | None = None,
) -> Attack:
    """Projected gradient descent: ``steps`` signed-gradient steps of ``step_size`` (default 2.5 epsilon /
    steps), each projected back onto the L-infinity ball of radius ``epsilon`` around ``x`` and onto
    [0, 1]. Untargeted it climbs the loss of the original class; with a ``target`` it descends the
    target's. It stops at the first step that flips the decision. One step of size ``epsilon`` is FGSM."""
    x = _one(network, x)
    _check_attack(network, epsilon, target)
    if not 1 <= steps <= 1000:
        raise EngineError(f"steps must be 1..1000, got {steps}")
    step_size = 2.5 * epsilon / steps if step_size is None else step_size
    logits0 = network.forward(x[None])[0]
    original = int(np.argmax(logits0))
    label, direction = (original, 1.0) if target is None else (target, -1.0)
    low, high = np.maximum(x - epsilon, 0.0), np.minimum(x + epsilon, 1.0)
    adversarial, logits, taken = x.copy(), logits0, 0
    for taken in range(1, steps + 1):  # noqa: B007 - its last value is the count reported
        _, grad = _loss_gradient(network, adversarial, label)
        adversarial = np.clip(adversarial + direction * step_size * np.sign(grad), low, high).astype(np.float32)
        logits = network.forward(adversarial[None])[0]
        if _succeeded(int(np.argmax(logits)), original, target):
            break
    result = int(np.argmax(logits))
    return Attack(
        adversarial,
        original,
        softmax(logits0.astype(np.float64)),
        result,
        softmax(logits.astype(np.float64)),
        _succeeded(result, original, target),
        taken,
    )


def fgsm(network: Network, x: np.ndarray, epsilon: float, target: int | None = None) -> Attack:
    """The fast gradient sign method: one step of ``epsilon`` along the sign of the loss's gradient."""
    return pgd(network, x, epsilon, steps=1, target=target, step_size=epsilon)
