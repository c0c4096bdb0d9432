"""The layer registry: every layer type a spec may use, one class each (see :mod:`engine.kinds.base`).

Importing this package registers them all; :data:`KINDS` maps a type's name to its (shared) instance.
"""

from engine.kinds import activations, dense, merges, norm, windows  # noqa: F401  (each registers its types)
from engine.kinds.base import KINDS, MAX_SIZE, REQUIRED, Field, LayerKind, Needs, Run, Where, kind_of

# the order the design page lists them in: the lecture's layers first, then the ones a course meets next
ORDER = (
    "conv", "maxpool", "avgpool", "linear", "relu", "tanh", "sigmoid", "flatten", "dropout",
    "batchnorm", "globalavgpool", "pad", "add", "concat", "normalize",
    "leakyrelu", "elu", "selu", "relu6", "hardsigmoid", "hardswish",
)  # fmt: skip
assert set(ORDER) == set(KINDS), "every registered layer type has its place in ORDER"
for _name in ORDER:
    KINDS[_name] = KINDS.pop(_name)

__all__ = ["KINDS", "MAX_SIZE", "REQUIRED", "Field", "LayerKind", "Needs", "Run", "Where", "kind_of"]
