"""CORAL ordinal head and loss: the reference oracle and the fused fast paths behind one dispatch.

``coral_loss`` and ``coral_predict`` take ``impl`` ("auto", "reference", "compiled", "triton",
"cpp"); see :mod:`bookcover.coral.ops`. Importing this package does not import triton.
"""

from bookcover.coral.ops import IMPLS, coral_loss, coral_predict, resolve_impl
from bookcover.coral.reference import (
    level_probabilities,
    levels_from_labels,
    task_importance_weights,
)

__all__ = [
    "IMPLS",
    "coral_loss",
    "coral_predict",
    "level_probabilities",
    "levels_from_labels",
    "resolve_impl",
    "task_importance_weights",
]
