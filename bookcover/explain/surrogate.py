"""lime's local surrogate, solved in torch on the model's device.

lime weights each sample by an exponential kernel of its cosine distance to the unperturbed
binary vector (width 0.25) and fits sklearn ``Ridge(alpha=1, fit_intercept=True)`` with those
sample weights. The same normal equations are solved here in float64 with torch, so no data
leaves the device and no sklearn is needed at run time; tests check the coefficients against
sklearn to 1e-8.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

KERNEL_WIDTH = 0.25
RIDGE_ALPHA = 1.0


def cosine_distances(data: torch.Tensor) -> torch.Tensor:
    """Cosine distance of every row of a 0/1 matrix to row 0, as sklearn computes it (clipped)."""
    x = data.to(torch.float64)
    norms = x.norm(dim=1)
    unit = x / torch.where(norms > 0, norms, torch.ones_like(norms))[:, None]  # all-zero rows stay 0
    sim = unit @ unit[0]
    return (1.0 - sim).clamp(0.0, 2.0)


def kernel_weights(distances: torch.Tensor, width: float = KERNEL_WIDTH) -> torch.Tensor:
    """lime's default kernel: sqrt(exp(-d^2 / width^2))."""
    return torch.sqrt(torch.exp(-(distances**2) / width**2))


@dataclass
class Surrogate:
    """A fitted weighted ridge: one weight per superpixel, the intercept and the weighted R^2."""

    coef: torch.Tensor  # (n_features,) float64
    intercept: float
    r2: float
    local_pred: float  # the surrogate's value at the unperturbed image (row 0)


def weighted_ridge(data: torch.Tensor, y: torch.Tensor, weights: torch.Tensor, alpha: float = RIDGE_ALPHA) -> Surrogate:
    """Ridge with intercept and sample weights, exactly sklearn's objective.

    Centre X and y with the weighted means, solve (Xc' W Xc + alpha I) b = Xc' W yc, and put the
    intercept back as ybar - xbar . b. R^2 is sklearn's weighted ``r2_score`` (1.0 for a perfect
    fit of a constant target, 0.0 for an imperfect one).
    """
    x = data.to(torch.float64)
    y = y.to(device=x.device, dtype=torch.float64)
    w = weights.to(device=x.device, dtype=torch.float64)
    total = w.sum()
    x_mean = (w @ x) / total
    y_mean = (w @ y) / total
    xc, yc = x - x_mean, y - y_mean
    gram = xc.T @ (w[:, None] * xc) + alpha * torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
    coef = torch.linalg.solve(gram, xc.T @ (w * yc))
    intercept = y_mean - x_mean @ coef
    pred = x @ coef + intercept
    ss_res = (w * (y - pred) ** 2).sum()
    ss_tot = (w * (y - y_mean) ** 2).sum()
    if float(ss_tot) == 0.0:
        r2 = 1.0 if float(ss_res) == 0.0 else 0.0
    else:
        r2 = float(1.0 - ss_res / ss_tot)
    return Surrogate(coef=coef, intercept=float(intercept), r2=r2, local_pred=float(pred[0]))


def fit_surrogate(
    data: torch.Tensor, y: torch.Tensor, width: float = KERNEL_WIDTH, alpha: float = RIDGE_ALPHA
) -> Surrogate:
    """lime's whole surrogate step: cosine distances -> kernel weights -> weighted ridge."""
    return weighted_ridge(data, y, kernel_weights(cosine_distances(data), width), alpha)
