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

import json
import keyword
import unicodedata
from collections.abc import Sequence

from engine._checks import pair
from engine.network import Network
from engine.spec import LayerPlan

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
        out = nn.functional.conv2d(x, self.weight, None, self.stride, self.padding, self.dilation)
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
    with np.load(path, allow_pickle=False) as data:
        state = {{}}
        for key in net.state_dict():
            layer, _, tensor = key.partition(".")
            state[key] = torch.from_numpy(np.asarray(data[f"{{Net.convscope_names[layer]}}.{{tensor}}"], np.float32))
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
    to_empty train training type xpu zero_grad convscope_names""".split()
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


def _window(plan: LayerPlan) -> str:
    cfg = plan.config
    args = f"kernel_size={pair(cfg['kernel_size'])}, stride={pair(cfg['stride'])}"  # the plan filled the stride in
    if plan.type == "conv":
        args += f", padding={pair(cfg['padding'])}, dilation={pair(cfg['dilation'])}"
    return args


def _module(plan: LayerPlan) -> str | None:
    """The ``nn`` module a named layer becomes, as source text."""
    if plan.type == "conv":
        mode = plan.config["padding_mode"]
        cls = "PartialConv2d" if mode == "partial" else "nn.Conv2d"
        extra = f", padding_mode={mode!r}" if mode not in ("zeros", "partial") else ""
        return f"{cls}({plan.input_shape[0]}, {plan.config['filters']}, {_window(plan)}{extra})"
    if plan.type == "maxpool":
        return f"nn.MaxPool2d({_window(plan)})"
    if plan.type == "avgpool":
        return f"nn.AvgPool2d({_window(plan)})"
    if plan.type == "linear":
        return f"nn.Linear({plan.input_shape[0]}, {plan.config['units']})"
    return None


def _step(plan: LayerPlan, attribute: dict[str, str]) -> str:
    """The forward pass's line for one spec layer."""
    if plan.named:
        return f"x = self.{attribute[plan.owner]}(x)"
    if plan.type == "flatten":
        return "x = torch.flatten(x, 1)"
    if plan.type == "dropout":
        return f"x = nn.functional.dropout(x, {plan.config['rate']}, self.training)"
    return f"x = torch.{plan.type}(x)"


def export_pytorch(network: Network, module: str = "convscope_model") -> str:
    """The network as the source of one Python file (see the module's docstring)."""
    c, h, w = network.input_shape
    title = str(network.meta.get("name") or "A convscope model").replace('"""', "'''")
    text = _HEADER.format(title=title, module=module, labels=json.dumps(network.labels), c=c, h=h, w=w)
    if any(p.type == "conv" and p.config["padding_mode"] == "partial" for p in network.plans):
        text += _PARTIAL
    attribute = python_names([p.owner for p in network.plans if p.named])
    renamed = {spec: f"  # {spec}" for spec, python in attribute.items() if python != spec}
    named = [p for p in network.plans if p.named]
    layers = [f"        self.{attribute[p.owner]} = {_module(p)}{renamed.get(p.owner, '')}" for p in named]
    steps = [f"        {_step(p, attribute)}  # -> {' x '.join(map(str, p.output_shape))}" for p in network.plans]
    names = json.dumps({python: spec for spec, python in attribute.items()}, ensure_ascii=False)
    text += "\n\nclass Net(nn.Module):\n"
    text += f"    convscope_names = {names}  # attribute -> the layer's name in convscope (and in the .npz)\n\n"
    text += "    def __init__(self):\n        super().__init__()\n"
    text += "\n".join(layers) + "\n\n    def forward(self, x):\n" + "\n".join(steps) + "\n        return x\n"
    return text + _FOOTER.format(module=module)
