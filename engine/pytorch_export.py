"""A convscope network -> one self-contained PyTorch file: an ``nn.Module`` whose layers carry the spec's
names (``conv1``, ``pool1``, ``fc1``), and ``load(path)`` that reads the model's ``.npz`` with NumPy.

The parameters are already in PyTorch's shapes (conv ``(F, C, KH, KW)``, linear ``(out, in)``) under the
same names (``conv1.weight``), so loading is a ``load_state_dict``. Partial-convolution padding, which
``nn.Conv2d`` does not have, gets a small ``PartialConv2d`` written into the file.

A spec's names are any identifiers, and some of them cannot be attributes of an ``nn.Module``: a keyword
(``lambda``), one of the module's own attributes (``forward``, ``training``), a name Python reads as
another (``ｃｏｎｖ2`` is ``conv2`` once NFKC-normalised, as the parser does). Such a layer gets another
attribute name (:func:`python_names`); ``Net.convscope_names`` maps each attribute to its spec name,
and ``load`` reads the weights by those.
"""

from __future__ import annotations

import importlib.util
import json
import keyword
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.network import Network

_HEADER = '''"""{title}, exported from convscope.

    python {module}.py weights.npz        # prints the logits of a blank input
    from {module} import load; net = load("weights.npz"); logits = net(x)   # x: N x {c} x {h} x {w}

The weights file is the model's .npz (GET /api/models/{{id}}/weights); it is read with NumPy, never pickle.
"""

import json
import sys

import numpy as np
import torch
from torch import nn

LABELS = {labels}
INPUT_SHAPE = ({c}, {h}, {w})  # channels, height, width; pixels in [0, 1], light ink on black
'''

_PARTIAL = '''

class PartialConv2d(nn.Conv2d):
    """Zero padding whose outputs are re-weighted by (kernel taps) / (taps inside the image), as in
    Liu et al., "Partial Convolution based Padding" (NVIDIA, 2018); the bias is added after."""

    def forward(self, x):
        out = nn.functional.conv2d(x, self.weight, None, self.stride, self.padding, self.dilation, self.groups)
        ones = torch.ones(1, 1, *x.shape[2:], dtype=x.dtype)
        taps = nn.functional.conv2d(ones, torch.ones(1, 1, *self.kernel_size, dtype=x.dtype), None,
                                    self.stride, self.padding, self.dilation)
        ratio = torch.where(taps > 0, self.kernel_size[0] * self.kernel_size[1] / taps.clamp(min=1), 0.0)
        return out * ratio + self.bias.view(1, -1, 1, 1)
'''

_FOOTER = '''

def load(path):
    """The network with the weights in ``path`` (the model's .npz, named as convscope names them), in eval mode."""
    net = Net()
    state = net.state_dict()
    with np.load(path, allow_pickle=False) as data:
        for key in state:
            layer, _, tensor = key.partition(".")
            if tensor != "num_batches_tracked":  # BatchNorm's step count: PyTorch's own, not kept by convscope
                stored = data[f"{{Net.convscope_names[layer]}}.{{tensor}}"]
                state[key] = torch.from_numpy(np.asarray(stored, np.float32))
    net.load_state_dict(state)
    return net.eval()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python {module}.py weights.npz")
    with torch.no_grad():
        logits = load(sys.argv[1])(torch.zeros(1, *INPUT_SHAPE))
    print(json.dumps([round(float(v), 6) for v in logits[0]]))
'''


# nn.Module's own attributes (torch 2.13, checked against the installed torch by the tests) and the
# export's: a layer by one of these names would replace a method or a flag the module needs
MODULE_ATTRIBUTES = frozenset(
    """T_destination add_module apply bfloat16 buffers call_super_init children compile cpu cuda double
    dump_patches eval extra_repr float forward get_buffer get_extra_state get_parameter get_submodule half ipu
    load_state_dict modules mtia named_buffers named_children named_modules named_parameters parameters
    register_backward_hook register_buffer register_forward_hook register_forward_pre_hook
    register_full_backward_hook register_full_backward_pre_hook register_load_state_dict_post_hook
    register_load_state_dict_pre_hook register_module register_parameter register_state_dict_post_hook
    register_state_dict_pre_hook requires_grad_ set_extra_state set_submodule share_memory state_dict to
    to_empty train training type xpu zero_grad convscope_names x""".split()
)


def _safe(word: str) -> bool:
    """Python reads ``word`` as itself (NFKC, as its parser does), and a layer by that name shadows nothing."""
    plain = word.isidentifier() and unicodedata.normalize("NFKC", word) == word
    return plain and not keyword.iskeyword(word) and not word.startswith("_") and word not in MODULE_ATTRIBUTES


def python_names(names: Sequence[str]) -> dict[str, str]:
    """Each spec name -> the ``nn.Module`` attribute it becomes: itself where it is already a plain, safe
    identifier, else its NFKC form with ``_layer`` added where that is still unsafe (``lambda_layer``,
    ``forward_layer``, ``class_layer`` for ``__class__``), numbered when it would meet another
    (``conv2_2`` for ``ｃｏｎｖ2`` beside ``conv2``). Names that need no change are served first."""
    chosen: dict[str, str] = {name: name for name in names if _safe(name)}
    taken = set(chosen.values())
    for name in names:
        if name in chosen:
            continue
        word = unicodedata.normalize("NFKC", name).strip("_") or "layer"
        word = "".join(c if c.isalnum() or c == "_" else "_" for c in word)
        if word[0].isdigit() or not _safe(word):
            word = f"{word}_layer" if word[0].isalpha() else f"layer_{word}"
        candidate, count = word, 1
        while candidate in taken:
            count += 1
            candidate = f"{word}_{count}"
        chosen[name] = candidate
        taken.add(candidate)
    return chosen


def _variables(network: Network, attribute: dict[str, str]) -> dict[int, str]:
    """The forward pass's variable for each plan's output: ``x`` all along a chain; in a graph, the named
    layer's own (a flatten, and what follows it in its layer, gets ``_flat``: the maps stay readable)."""
    if all(plan.sources == (plan.index - 1,) for plan in network.plans):
        return {plan.index: "x" for plan in network.plans}
    names, flat = {}, set()
    for plan in network.plans:
        base = "x" if plan.name == "input" else attribute[plan.name]
        if plan.kind.keeps_flat or (not plan.named and plan.name in flat):
            flat.add(plan.name)
            base += "_flat"
        names[plan.index] = base
    return names


def _lines(network: Network, attribute: dict[str, str]) -> tuple[list[str], list[str]]:
    """The ``__init__`` lines (a module per named layer that has one) and the ``forward`` lines."""
    renamed = {spec: f"  # {spec}" for spec, python in attribute.items() if python != spec}
    variables = _variables(network, attribute)
    modules, steps = [], []
    for plan in network.plans:
        module = plan.kind.torch_module(plan)
        if module is not None:
            modules.append(f"        self.{attribute[plan.name]} = {module}{renamed.get(plan.name, '')}")
        args = [variables.get(s, "x") for s in plan.sources]
        call = plan.kind.torch_call(plan, f"self.{attribute[plan.name]}" if module else None, args)
        shape = " x ".join(map(str, plan.output_shape))
        steps.append(f"        {variables[plan.index]} = {call}  # -> {shape}")
    steps.append(f"        return {variables[network.plans[-1].index]}")
    return modules, steps


def export_pytorch(network: Network, module: str = "convscope_model") -> str:
    """The network as the source of one Python file (see the module's docstring)."""
    c, h, w = network.input_shape
    title = str(network.meta.get("name") or "A convscope model").replace('"""', "'''")
    text = _HEADER.format(title=title, module=module, labels=json.dumps(network.labels), c=c, h=h, w=w)
    if any(p.config.get("padding_mode") == "partial" for p in network.plans):
        text += _PARTIAL
    attribute = python_names([p.name for p in network.plans if p.named])
    modules, steps = _lines(network, attribute)
    names = json.dumps({python: spec for spec, python in attribute.items()}, ensure_ascii=False)
    text += "\n\nclass Net(nn.Module):\n"
    text += f"    convscope_names = {names}  # attribute -> the layer's name in convscope (and in the .npz)\n\n"
    text += "    def __init__(self):\n        super().__init__()\n" + "\n".join(modules)
    text += "\n\n    def forward(self, x):\n" + "\n".join(steps) + "\n"
    return text + _FOOTER.format(module=module)


def pytorch_twin(network: Network, directory: Path) -> Any:
    """The network as a live ``nn.Module`` with its weights (float32, like the engine): its exported file and
    ``.npz`` written to ``directory`` and loaded. For the tests and benchmarks that compare with PyTorch where
    it is installed; torch is never a dependency, and this is the only function here that imports it."""
    (directory / "twin.py").write_text(export_pytorch(network, module="twin"), encoding="utf-8")
    network.save(directory / "twin.npz")
    spec = importlib.util.spec_from_file_location("twin", directory / "twin.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.load(str(directory / "twin.npz"))
