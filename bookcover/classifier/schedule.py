"""The optimiser and its learning-rate schedule, built from a TrainConfig.

The study used Adam at a constant 5e-4 with no weight decay. From scratch on a few thousand
noisy labels that schedule swings from epoch to epoch and drifts into predicting one level
(see the study command's report). The choices exposed here are the usual remedies: AdamW's
decoupled weight decay, a linear warm-up, and a cosine decay to zero by the last step.

The schedule is a pure function of the global step, so a resumed run (which knows its step
from the epoch it resumes at) continues the same curve. The training loop advances it once per
step, outside the step itself: a step replayed from a CUDA graph runs no Python (an optimiser
hook would never fire) and reads a float learning rate baked in at capture, so graph mode keeps
the rate in a device tensor that the schedule fills in place.
"""

from __future__ import annotations

import math

import torch

from bookcover.classifier.config import TrainConfig
from bookcover.errors import BookcoverError

OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("constant", "cosine")
WARMUP_START = 0.01  # warm-up starts at lr / 100


def make_optimizer(
    model: torch.nn.Module, config: TrainConfig, fused: bool = False, capturable: bool = False,
    tensor_lr: bool = False,
) -> torch.optim.Optimizer:
    """Adam (L2 weight decay, the study's) or AdamW (decoupled weight decay).

    capturable: the step may be captured in a CUDA graph. tensor_lr keeps the learning rate in
    a tensor on the parameters' device (fused only), which a captured step reads at replay.
    """
    if config.optimizer not in OPTIMIZERS:
        raise BookcoverError(f"unknown optimizer {config.optimizer!r}; choose {' or '.join(OPTIMIZERS)}")
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    params = list(model.parameters())
    lr = torch.tensor(config.lr, device=params[0].device) if tensor_lr else config.lr
    return cls(params, lr=lr, betas=(config.beta1, config.beta2), weight_decay=config.weight_decay,
               fused=fused, capturable=capturable)


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


class LrSchedule:
    """The learning rate of every optimiser step: call advance() once after each step.

    Sets the rate of the first step to come on construction. A tensor rate (graph mode) is
    filled in place, so a captured step sees each new value; a float one is replaced.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int,
                 start_epoch: int = 0):
        self.optimizer, self.config, self.steps_per_epoch = optimizer, config, steps_per_epoch
        self.total = steps_per_epoch * config.epochs
        self.step = start_epoch * steps_per_epoch
        self._apply()

    def _apply(self) -> None:
        lr = lr_at(self.step, self.total, self.config, self.steps_per_epoch)
        for group in self.optimizer.param_groups:
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr

    def advance(self) -> None:
        """One optimiser step was taken: set the rate of the next."""
        self.step += 1
        self._apply()
