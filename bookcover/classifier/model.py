"""ResNet-34 with a CORAL ordinal head, trained from scratch (no weight download)."""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from bookcover import coral
from bookcover.coral.reference import level_probabilities

FEATURE_DIM = 512


class CoralResNet34(nn.Module):
    """torchvision ResNet-34 backbone -> optional dropout -> shared Linear(512, 1) -> logit g.

    The K-1 CORAL biases live beside the head as ``coral_bias`` so that the fused CORAL op can
    take (g, bias) directly; z_k = g + b_k. Dropout before the head is the study's proposed
    remedy for its overfitting.
    """

    def __init__(self, num_levels: int = 5, dropout: float = 0.0):
        super().__init__()
        if num_levels < 2:
            raise ValueError(f"num_levels must be at least 2, got {num_levels}")
        self.num_levels = num_levels
        backbone = torchvision.models.resnet34(weights=None)
        backbone.fc = nn.Identity()
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(FEATURE_DIM, 1, bias=False)
        # coral-pytorch's initialisation: ordered biases (K-1)/(K-1), ..., 1/(K-1).
        init = torch.arange(num_levels - 1, 0, -1, dtype=torch.float32) / (num_levels - 1)
        self.coral_bias = nn.Parameter(init)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features h(x), shape (B, 512)."""
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The shared logit g = w . h(x), shape (B,)."""
        return self.head(self.dropout(self.features(x))).squeeze(1)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """probas P(level > k) (B, K-1), rank (B,), level_probs (B, K), via the fused inference op."""
        logit = self(x).float()
        probas, rank = coral.coral_predict(logit, self.coral_bias.float())
        return {"probas": probas, "rank": rank, "level_probs": level_probabilities(probas)}
