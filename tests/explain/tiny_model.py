"""A tiny, fixed CORAL model: where LIME's own overhead, not the network, sets the pace.

A test fixture, kept out of the installed package: used by the parity tests (deterministic on CPU,
no training needed) and by the benchmark's "tiny model" row (bench/lime_speed.py imports it from
here). Same interface as CoralResNet34: ``forward`` -> logit g, ``predict`` -> probas.
"""

from __future__ import annotations

import torch
from torch import nn

from bookcover.coral import coral_predict, level_probabilities


class TinyCoral(nn.Module):
    """conv 5x5/4 -> ReLU -> global mean -> Linear -> logit; weights fixed by ``seed``."""

    def __init__(self, num_levels: int = 5, seed: int = 0):
        super().__init__()
        self.num_levels = num_levels
        gen = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(3, 8, kernel_size=5, stride=4)
        self.head = nn.Linear(8, 1, bias=False)
        with torch.no_grad():
            for p in (self.conv.weight, self.conv.bias, self.head.weight):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
        self.coral_bias = nn.Parameter(torch.linspace(1.0, -1.0, num_levels - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)).mean((2, 3))).squeeze(1)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        probas, rank = coral_predict(self(x).float(), self.coral_bias.float())
        return {"probas": probas, "rank": rank, "level_probs": level_probabilities(probas)}
