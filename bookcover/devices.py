"""Which torch device a command runs on: one rule for every feature."""

from __future__ import annotations

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """auto: the GPU when there is one, else the CPU; anything else is taken as torch spells it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
