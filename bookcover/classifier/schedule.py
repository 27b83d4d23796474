"""The optimiser and its learning-rate schedule, built from a TrainConfig.

The study used Adam at a constant 5e-4 with no weight decay. From scratch on a few thousand
noisy labels that schedule swings from epoch to epoch and drifts into predicting one level
(see the study command's report). The choices exposed here are the usual remedies: AdamW's
decoupled weight decay, a linear warm-up, and a cosine decay to zero by the last step.

The schedule is a pure function of the global step, applied by an optimiser step hook, so a
resumed run (which knows its step from the epoch it resumes at) continues the same curve and
the training loop itself needs no scheduler call.
"""

from __future__ import annotations

import math

import torch

from bookcover.classifier.config import TrainConfig
from bookcover.errors import BookcoverError

OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("constant", "cosine")
WARMUP_START = 0.01  # warm-up starts at lr / 100


def make_optimizer(model: torch.nn.Module, config: TrainConfig, fused: bool = False) -> torch.optim.Optimizer:
    """Adam (L2 weight decay, the study's) or AdamW (decoupled weight decay)."""
    if config.optimizer not in OPTIMIZERS:
        raise BookcoverError(f"unknown optimizer {config.optimizer!r}; choose {' or '.join(OPTIMIZERS)}")
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(model.parameters(), lr=config.lr, betas=(config.beta1, config.beta2),
               weight_decay=config.weight_decay, fused=fused)


def lr_at(step: int, total_steps: int, config: TrainConfig, steps_per_epoch: int) -> float:
    """The learning rate of global step `step` (0-based) of `total_steps`."""
    if config.lr_schedule not in SCHEDULES:
        raise BookcoverError(f"unknown lr schedule {config.lr_schedule!r}; choose {' or '.join(SCHEDULES)}")
    warmup = int(round(config.warmup_epochs * steps_per_epoch))
    if step < warmup:
        return config.lr * (WARMUP_START + (1 - WARMUP_START) * step / warmup)
    if config.lr_schedule == "constant":
        return config.lr
    span = max(1, total_steps - warmup)
    return config.lr * 0.5 * (1 + math.cos(math.pi * min(step - warmup, span) / span))


def attach_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int,
                    start_epoch: int = 0) -> None:
    """Set the learning rate for the first step to come, and after every optimiser step the next."""
    total = steps_per_epoch * config.epochs
    state = {"step": start_epoch * steps_per_epoch}

    def apply() -> None:
        lr = lr_at(state["step"], total, config, steps_per_epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr

    def advance(opt, args, kwargs) -> None:
        state["step"] += 1
        apply()

    apply()
    if config.lr_schedule != "constant" or config.warmup_epochs > 0:
        optimizer.register_step_post_hook(advance)
