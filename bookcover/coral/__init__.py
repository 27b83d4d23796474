"""CORAL ordinal head and loss: the reference oracle and the fused fast paths behind one dispatch.

``coral_loss`` and ``coral_predict`` take ``impl`` ("auto", "reference", "compiled", "triton",
"cpp"). One table (:mod:`bookcover.coral.dispatch`) maps (device, impl, mode) to the route that
runs: ``auto`` takes the C++ op on CPU (the reference, with a one-line notice, when it was not
built) and for small eager CUDA calls, Triton under torch.compile, CUDA graph capture and for
large eager CUDA batches. An explicit impl that cannot run raises CoralImplError; it never falls
back. ``last_route()`` says which route the last eager call took, ``resolve_route()`` which one
a call would take. Importing this package does not import triton.
"""

from bookcover.coral.dispatch import CoralImplError
from bookcover.coral.ops import IMPLS, coral_loss, coral_predict, last_route, resolve_route
from bookcover.coral.reference import (
    level_probabilities,
    levels_from_labels,
    task_importance_weights,
)

__all__ = [
    "IMPLS",
    "CoralImplError",
    "coral_loss",
    "coral_predict",
    "last_route",
    "level_probabilities",
    "levels_from_labels",
    "resolve_route",
    "task_importance_weights",
]
