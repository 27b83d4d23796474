"""What the surrogate explains: one number per perturbed cover, computed from CORAL outputs.

* ``proba`` (default): the CORAL probability that carries the predicted level. For a cover
  predicted at level r >= 1 it is P(level > r-1) = P(level >= r), the evidence for reaching r;
  for r = 0 it is P(level > 0), which the explanation then shows pushing *against* level 0.
* ``expected``: the expected level, sum_k P(level > k) (0 .. K-1), a smooth summary of all
  K-1 tasks.
"""

from __future__ import annotations

import torch

TARGETS = ("proba", "expected")


def target_task(rank: int) -> int:
    """Index k of the CORAL task explained by ``proba`` for predicted level ``rank``."""
    return max(rank - 1, 0)


def target_values(out: dict[str, torch.Tensor], target: str, task: int) -> torch.Tensor:
    """(N,) float64 target values from a prediction dict (probas (N, K-1))."""
    probas = out["probas"].to(torch.float64)
    if target == "proba":
        return probas[:, task]
    if target == "expected":
        return probas.sum(1)
    raise ValueError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")


def describe(target: str, task: int) -> str:
    if target == "proba":
        return f"P(level > {task})"
    return "expected level"
