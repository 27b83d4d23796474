"""The pure-PyTorch CORAL oracle (Cao, Mirjalili & Raschka, 2020).

Every fast implementation of the CORAL head and loss is tested against these functions, so they
favour clarity over speed. Conventions follow coral-pytorch:

* K ordinal levels become K-1 binary tasks, y_k = 1[label > k].
* One shared logit g per example; task k adds its own bias: z_k = g + b_k.
* p_k = sigmoid(z_k) = P(level > k); the predicted rank is sum_k 1[p_k > 0.5].
* loss = mean_i( -sum_k lambda_k [y_ik log p_ik + (1 - y_ik) log(1 - p_ik)] ).

Invalid labels. Labels are validated once, where the data is built (bookcover.data gives levels
0..K-1 by construction). Per call, :func:`coral_loss` only checks the dtype (no data read); a
label outside 0..K-1 makes that row's loss, and so the mean, NaN, as in every fused
implementation, without a host sync: the training loop's finiteness check catches it. Call
:func:`check_labels` (or ``bookcover.coral.coral_loss(..., check_labels=True)``) to get an
InvalidLabelsError instead, at the cost of one device-to-host sync.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bookcover.errors import InvalidLabelsError

__all__ = [
    "check_label_dtype",
    "check_labels",
    "coral_logits",
    "coral_loss",
    "coral_predict",
    "level_probabilities",
    "levels_from_labels",
    "task_importance_weights",
]


def check_label_dtype(labels: torch.Tensor, num_levels: int) -> None:
    """The cheap part of label validation (no data read, no sync): integer dtype, K >= 2."""
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise InvalidLabelsError(f"labels must be an integer tensor, got dtype {labels.dtype}")
    if num_levels < 2:
        raise InvalidLabelsError(f"CORAL needs at least 2 levels, got {num_levels}")


def check_labels(labels: torch.Tensor, num_levels: int) -> None:
    """Raise a clear error unless labels are integers in 0..num_levels-1 (one host sync)."""
    check_label_dtype(labels, num_levels)
    if labels.numel() == 0:
        return
    lo, hi = torch.stack(torch.aminmax(labels.reshape(-1))).tolist()
    if lo < 0 or hi > num_levels - 1:
        raise InvalidLabelsError(
            f"labels must lie in 0..{num_levels - 1}; got values from {lo} to {hi}"
        )


def levels_from_labels(labels: torch.Tensor, num_levels: int, dtype=torch.float32) -> torch.Tensor:
    """Binary task targets (B, K-1): row i is 1[label_i > k] for k = 0..K-2. Vectorised.

    Validates the labels (one sync): this is the data-side helper. The loss uses
    :func:`_levels`, which does not.
    """
    check_labels(labels, num_levels)
    return _levels(labels, num_levels, dtype)


def _levels(labels: torch.Tensor, num_levels: int, dtype) -> torch.Tensor:
    thresholds = torch.arange(num_levels - 1, device=labels.device)
    return (labels.reshape(-1, 1) > thresholds).to(dtype)


def task_importance_weights(labels: torch.Tensor, num_levels: int) -> torch.Tensor:
    """The CORAL paper's lambda_k = sqrt(m_k) / max_j sqrt(m_j).

    m_k is the size of the larger side of threshold k, so thresholds with a lopsided split
    (many more examples on one side) get more weight.
    """
    levels = levels_from_labels(labels, num_levels, dtype=torch.float64)
    n = labels.numel()
    above = levels.sum(0)
    m = torch.maximum(above, n - above)
    root = m.sqrt()
    return (root / root.max()).to(torch.float32)


def coral_logits(logit: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """z_k = g + b_k, shape (B, K-1)."""
    return logit.reshape(-1, 1) + bias.reshape(1, -1)


def coral_loss(
    logit: torch.Tensor,
    bias: torch.Tensor,
    labels: torch.Tensor,
    task_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """CORAL loss: summed over tasks, averaged over the batch. Math in fp32 (or fp64).

    A label outside 0..K-1 makes the loss NaN (see the module docstring); no host sync.
    """
    num_levels = bias.numel() + 1
    check_label_dtype(labels, num_levels)
    compute = torch.float64 if logit.dtype == torch.float64 else torch.float32
    flat = labels.reshape(-1)
    # Tasks x rows (K-1, B), the transpose of coral_logits: the same elementwise math, but the
    # long batch dimension is innermost, which torch.compile's CPU code vectorises (with the
    # K-1 = 4 tasks innermost it ran fwd+bwd at B=65,536 several times slower than eager).
    z = bias.to(compute).reshape(-1, 1) + logit.to(compute).reshape(1, -1)
    thresholds = torch.arange(num_levels - 1, device=labels.device).reshape(-1, 1)
    levels = (flat.reshape(1, -1) > thresholds).to(compute)
    log_p = F.logsigmoid(z)
    log_not_p = log_p - z  # log(1 - sigmoid(z)) without cancellation
    per_task = levels * log_p + (1.0 - levels) * log_not_p
    if task_weights is not None:
        per_task = per_task * task_weights.to(compute).reshape(-1, 1)
    bad = flat.clamp(0, num_levels - 1) != flat  # two small ops; no sync
    return -per_task.sum(dim=0).masked_fill(bad, float("nan")).mean()


def coral_predict(logit: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (probas, rank): probas (B, K-1) = P(level > k); rank (B,) int64."""
    compute = torch.float64 if logit.dtype == torch.float64 else torch.float32
    probas = torch.sigmoid(coral_logits(logit.to(compute), bias.to(compute)))
    rank = (probas > 0.5).sum(dim=1)
    return probas, rank


def level_probabilities(probas: torch.Tensor) -> torch.Tensor:
    """Per-level probabilities (B, K) from P(level > k) (B, K-1).

    P(y=0) = 1 - p_0, P(y=k) = p_{k-1} - p_k, P(y=K-1) = p_{K-2}. CORAL's biases are ordered at
    the optimum, but a partly trained model can give small negative differences; those are
    clipped to 0 and the row renormalised so the result is a distribution.
    """
    ones = torch.ones_like(probas[:, :1])
    zeros = torch.zeros_like(probas[:, :1])
    upper = torch.cat([ones, probas], dim=1)
    lower = torch.cat([probas, zeros], dim=1)
    probs = (upper - lower).clamp_min(0.0)
    return probs / probs.sum(dim=1, keepdim=True).clamp_min(torch.finfo(probs.dtype).tiny)
