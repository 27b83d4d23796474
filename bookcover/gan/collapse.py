"""Warnings on signs of GAN failure, so a bad run is noticed before 200 epochs are spent on it."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

D_LOSS_FLOOR = 0.05  # D loss this low: D separates real from fake almost perfectly
D_FAKE_FLOOR = 0.01  # D(G(z)) this low: G's gradient through the sigmoid vanishes
SPREAD_FLOOR = 0.05  # per-pixel std across fixed-noise samples: all samples look alike


@dataclass
class CollapseMonitor:
    """Counts consecutive suspicious steps; warns once per kind per epoch."""

    patience: int = 100
    low_d_loss: int = 0
    low_d_fake: int = 0
    warned: set = field(default_factory=set)

    def state(self) -> dict:
        return {"low_d_loss": self.low_d_loss, "low_d_fake": self.low_d_fake}

    def load(self, state: dict) -> None:
        self.low_d_loss = int(state.get("low_d_loss", 0))
        self.low_d_fake = int(state.get("low_d_fake", 0))

    def new_epoch(self) -> None:
        self.warned = set()

    def step(self, loss_d: float, d_g_z: float) -> list[str]:
        """Update with one step's D loss and mean D(G(z)); return new warnings."""
        self.low_d_loss = self.low_d_loss + 1 if loss_d < D_LOSS_FLOOR else 0
        self.low_d_fake = self.low_d_fake + 1 if d_g_z < D_FAKE_FLOOR else 0
        out = []
        if self.low_d_loss >= self.patience and "d_loss" not in self.warned:
            self.warned.add("d_loss")
            out.append(
                f"possible collapse: D loss < {D_LOSS_FLOOR} for {self.low_d_loss} steps in a row "
                "(D wins outright, G learns nothing); try --beta1 0.5 or a lower --lr"
            )
        if self.low_d_fake >= self.patience and "d_fake" not in self.warned:
            self.warned.add("d_fake")
            out.append(
                f"possible collapse: D(G(z)) < {D_FAKE_FLOOR} for {self.low_d_fake} steps in a row "
                "(G's gradient vanishes)"
            )
        return out

    def samples(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> list[str]:
        """Check the fixed-noise samples: nearly identical images mean mode collapse.

        With labels (a conditional GAN), each level is checked on its own: G may vary with the
        level yet ignore z within it.
        """
        groups = [images] if labels is None else [images[labels == k] for k in labels.unique()]
        spreads = [float(g.float().std(0).mean()) for g in groups if g.shape[0] >= 2]
        if not spreads:
            return []
        spread = min(spreads)
        if spread < SPREAD_FLOOR:
            where = " within a level" if labels is not None else ""
            return [f"possible mode collapse: fixed-noise samples are nearly identical{where} (pixel std {spread:.3f})"]
        return []
