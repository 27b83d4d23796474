"""Precise BatchNorm: recompute the running statistics for the weights being evaluated.

During training, BatchNorm normalises each batch by its own statistics, and keeps running
averages (momentum 0.1: roughly the last 10-20 batches) for evaluation. Those averages mix
statistics of earlier weights. When the weights move fast (Adam at 5e-4 from scratch) and the
CORAL logit's spread between covers is small (weak or no signal), that mismatch shifts every
evaluation logit by about as much as the gap between two CORAL thresholds: evaluation then
predicts one level for most covers, and validation MAE swings from epoch to epoch
(see bookcover.classifier.study's report and the issue 13 notes in the README).

recalibrate() runs a fixed set of training covers (centre crops, as evaluation sees them)
through the model in train mode with a cumulative average (momentum None), so the stored
statistics belong to the stored weights. It changes no weight and draws no random number, so
training itself and its resume determinism are untouched.
"""

from __future__ import annotations

import torch
from torch import nn

from bookcover.data.batches import eval_batch


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate(model: nn.Module, pixels: torch.Tensor, crop: int, batch_size: int, count: int, seed: int = 0) -> int:
    """Reset and re-estimate every BatchNorm's running statistics from `count` covers of uint8
    (N, H, W, 3) `pixels` (a fixed random subset, in batches of batch_size; whole batches only).
    Returns how many covers were used (0: nothing to do)."""
    layers = batchnorm_layers(model)
    n = pixels.shape[0]
    batch_size = max(2, min(batch_size, n))
    use = min(count, n) // batch_size * batch_size
    if not layers or use == 0:
        return 0
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:use].to(pixels.device)
    was_training = model.training
    momenta = [m.momentum for m in layers]
    model.eval()
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
        m.train()
    try:
        for a in range(0, use, batch_size):
            model(eval_batch(pixels[order[a : a + batch_size]], crop))
    finally:
        for m, momentum in zip(layers, momenta, strict=True):
            m.momentum = momentum
        model.train(was_training)
    return use
