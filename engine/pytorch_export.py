"""A convscope network -> one self-contained PyTorch file: an ``nn.Module`` whose layers carry the spec's
names (``conv1``, ``pool1``, ``fc1``), and ``load(path)`` that reads the model's ``.npz`` with NumPy.

The parameters are already in PyTorch's shapes (conv ``(F, C, KH, KW)``, linear ``(out, in)``) under the
same names (``conv1.weight``), so loading is a ``load_state_dict``. Partial-convolution padding, which
``nn.Conv2d`` does not have, gets a small ``PartialConv2d`` written into the file.
"""

from __future__ import annotations

import json

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
    """The network with the weights in ``path`` (the model's .npz), in eval mode."""
    net = Net()
    with np.load(path, allow_pickle=False) as data:
        state = {{key: torch.from_numpy(np.asarray(data[key], np.float32)) for key in net.state_dict()}}
    net.load_state_dict(state)
    return net.eval()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python {module}.py weights.npz")
    with torch.no_grad():
        logits = load(sys.argv[1])(torch.zeros(1, *INPUT_SHAPE))
    print(json.dumps([round(float(v), 6) for v in logits[0]]))
'''


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


def _step(plan: LayerPlan) -> str:
    """The forward pass's line for one spec layer."""
    if plan.named:
        return f"x = self.{plan.owner}(x)"
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
    layers = [f"        self.{p.owner} = {_module(p)}" for p in network.plans if p.named]
    steps = [f"        {_step(p)}  # -> {' x '.join(map(str, p.output_shape))}" for p in network.plans]
    text += "\n\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
    text += "\n".join(layers) + "\n\n    def forward(self, x):\n" + "\n".join(steps) + "\n        return x\n"
    return text + _FOOTER.format(module=module)
