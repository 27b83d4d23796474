"""CORAL ordinal head and loss: the reference oracle (and, later, fused fast paths)."""

from bookcover.coral.reference import (
    coral_loss,
    coral_predict,
    level_probabilities,
    levels_from_labels,
    task_importance_weights,
)

__all__ = [
    "coral_loss",
    "coral_predict",
    "level_probabilities",
    "levels_from_labels",
    "task_importance_weights",
]
