"""ResNet-34 with a CORAL ordinal head, trained from scratch or from a local state dict (no download)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from bookcover import coral
from bookcover.classifier.resnet import FEATURES as FEATURE_DIM
from bookcover.classifier.resnet import ResNet34
from bookcover.coral.reference import level_probabilities
from bookcover.errors import CheckpointError


class CoralResNet34(nn.Module):
    """ResNet-34 backbone (torchvision's, see resnet.py) -> optional dropout -> shared Linear(512, 1) -> logit g.

    The K-1 CORAL biases live beside the head as ``coral_bias`` so that the fused CORAL op can
    take (g, bias) directly; z_k = g + b_k. Dropout before the head is the study's proposed
    remedy for its overfitting.
    """

    def __init__(self, num_levels: int = 5, dropout: float = 0.0):
        super().__init__()
        if num_levels < 2:
            raise ValueError(f"num_levels must be at least 2, got {num_levels}")
        self.num_levels = num_levels
        self.backbone = ResNet34()  # torchvision's ResNet-34 without fc, without importing torchvision
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(FEATURE_DIM, 1, bias=False)
        # coral-pytorch's initialisation: ordered biases (K-1)/(K-1), ..., 1/(K-1).
        # On the CPU even when built on the meta device (load_classifier): arange on meta would
        # import torch._dynamo (1.2 s of a cold start) for a value the checkpoint replaces anyway.
        init = torch.arange(num_levels - 1, 0, -1, dtype=torch.float32, device="cpu") / (num_levels - 1)
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


def load_backbone_init(model: CoralResNet34, path: str | Path) -> None:
    """Start the backbone from a local torchvision ResNet-34 state dict (``resnet34().state_dict()``).

    Users with internet access can save ImageNet weights once and pass them here; nothing is
    downloaded. The ``fc.*`` keys (ImageNet's classifier) are ignored; every other key must be
    present with the right shape, else CheckpointError says which.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"--init {path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"--init {path}: not a loadable state dict ({first[:160]})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"--init {path}: expected a torchvision ResNet-34 state dict (name -> tensor)")
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    expected = model.backbone.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        what = f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}"
        raise CheckpointError(
            f"--init {path}: not a torchvision ResNet-34 state dict ({what}; "
            f"{len(missing)} missing, {len(unexpected)} unexpected keys)"
        )
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            raise CheckpointError(f"--init {path}: {name} has shape {tuple(tensor.shape)}, "
                                  f"ResNet-34 needs {tuple(expected[name].shape)}")
    model.backbone.load_state_dict(state)
