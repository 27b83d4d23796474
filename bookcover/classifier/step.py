"""One training step with no host sync, run eagerly, compiled, or replayed as one CUDA graph.

At batch 256 on a large GPU the step is host-bound: an H200 ran the eager step at 14,700 img/s
and the same step captured in one CUDA graph at 25,400 img/s. So nothing in a step waits for
the device:

* the epoch's permutation and crops are drawn on the device, once per epoch (:func:`epoch_draws`);
* the loss is ``bookcover.coral.coral_loss``, whose label check reads nothing back from the
  device (an invalid label makes the loss NaN); the labels are checked once, before training;
* the loss sum, error sum, count and the first non-finite loss are accumulated on the device
  (:class:`StepStats`) and read once per epoch, or every ``CHECK_EVERY`` steps.

:class:`TrainStep` is the whole step (micro-batches, forward, loss, backward, optimizer step,
statistics). In ``graph`` mode the first ``GRAPH_WARMUP`` steps of each batch size run eagerly
on a side stream, then the step is captured once and replayed: one launch per step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from bookcover.data.batches import apply_crops, draw_crops, norm_stats, normalise
from bookcover.errors import UsageError

STEP_MODES = ("auto", "graph", "compile", "eager")
CHECK_EVERY = 50  # steps between reads of the non-finite flag (one host sync), besides each epoch's end
GRAPH_WARMUP = 3  # eager steps of a batch size before it is captured (cuDNN autotuning, lazy state)

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


def resolve_step_mode(mode: str, compile_flag: bool | None, device: torch.device, distributed: bool, fp16: bool) -> str:
    """The step mode a run uses.

    auto: ``graph`` on CUDA in one process (1.73x eager on an H200, where compile gained
    nothing); ``compile`` when --compile is given, and under DDP on CUDA (as before); else
    ``eager``. An explicit ``graph`` needs CUDA, one process and no fp16 GradScaler (its
    overflow check reads the device every step).
    """
    if mode not in STEP_MODES:
        raise UsageError(f"unknown --step-mode {mode!r}; choose from {', '.join(STEP_MODES)}")
    if mode == "auto":
        if compile_flag:
            return "compile"
        if device.type == "cuda" and not distributed and not fp16:
            return "graph"
        return "compile" if device.type == "cuda" and compile_flag is None else "eager"
    if mode == "graph":
        why = ("needs a CUDA device" if device.type != "cuda" else "does not run under torchrun (DDP)" if distributed
               else "does not work with --amp fp16 (the GradScaler reads the device every step)" if fp16 else None)
        if why:
            raise UsageError(f"--step-mode graph {why}; use --step-mode eager or compile")
    return mode


def load_optimizer_state(optimizer: torch.optim.Optimizer, saved: dict) -> None:
    """Load a checkpoint's optimizer state, keeping this run's ``fused`` and ``capturable``.

    load_state_dict restores every hyperparameter the checkpoint saved; a run resumed in another
    step mode (or on another device) must keep its own (and its learning rate's form), or capturing fails ("capturable is
    False") and the step counters stay on the wrong device. Set before loading, they also decide
    where load_state_dict puts those counters.
    """
    saved = {**saved, "param_groups": [dict(g) for g in saved["param_groups"]]}
    for group, mine in zip(saved["param_groups"], optimizer.param_groups, strict=True):
        for key in ("fused", "capturable"):
            if key in mine:
                group[key] = mine[key]
        # The rate's form (a float, or graph mode's device tensor) is this run's; the schedule
        # sets its value before the first step.
        group["lr"] = mine["lr"]
    optimizer.load_state_dict(saved)


def epoch_draws(
    n: int, height: int, width: int, crop: int, flip: bool, seed: int, epoch: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """The epoch's permutation (n,) and one crop row per position (n, 3), drawn on ``device``.

    Seeded by (seed, epoch) alone, so a resumed run draws exactly what an uninterrupted one did.
    """
    gen = torch.Generator(device=device).manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=gen, device=device)
    return perm, draw_crops(n, height, width, crop, flip, gen)


@dataclass
class StepStats:
    """Per-epoch sums kept on the device: nothing here is read until :meth:`read`."""

    device: torch.device
    totals: torch.Tensor = field(init=False)  # loss sum, absolute error sum, count (float64)
    steps: torch.Tensor = field(init=False)  # optimizer steps this epoch
    bad_step: torch.Tensor = field(init=False)  # first step with a non-finite loss, -1 if none
    bad_loss: torch.Tensor = field(init=False)  # that loss

    def __post_init__(self) -> None:
        self.totals = torch.zeros(3, dtype=torch.float64, device=self.device)
        self.steps = torch.zeros((), dtype=torch.int64, device=self.device)
        self.bad_step = torch.full((), -1, dtype=torch.int64, device=self.device)
        self.bad_loss = torch.zeros((), dtype=torch.float64, device=self.device)

    def reset(self) -> None:
        """In place: a captured graph keeps writing to the same tensors."""
        self.totals.zero_()
        self.steps.zero_()
        self.bad_step.fill_(-1)
        self.bad_loss.zero_()

    @torch.no_grad()
    def record(self, loss: torch.Tensor, logit: torch.Tensor, bias: torch.Tensor, labels: torch.Tensor) -> None:
        """Add one micro-batch: loss * n, |rank - label| summed, n; remember the first non-finite loss."""
        loss = loss.detach().double()
        rank = ((logit.detach().float()[:, None] + bias.detach().float()) > 0).sum(1)
        n = labels.numel()
        err = (rank - labels).abs().sum().double()
        self.totals += torch.stack([loss * n, err, torch.full_like(err, float(n))])
        first = ~torch.isfinite(loss) & (self.bad_step < 0)
        self.bad_loss.copy_(torch.where(first, loss, self.bad_loss))
        self.bad_step.copy_(torch.where(first, self.steps, self.bad_step))

    @torch.no_grad()
    def end_step(self) -> None:
        self.steps += 1

    def read_bad(self) -> tuple[int, float]:
        """(first bad step, its loss): one host sync."""
        step, loss = torch.stack([self.bad_step.double(), self.bad_loss]).tolist()
        return int(step), loss


class TrainStep:
    """The whole training step for one global batch: ``step(idx, crops)``, no host sync inside.

    ``idx`` (B,) are positions in the resident ``pixels``/``labels``, ``crops`` (B, 3) their
    crop rows, both on the device. The global batch is split into ``chunks`` micro-batches and
    this process takes ``mine`` of them (DDP rank r: its share; one process: all).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        step_model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_fn: LossFn,
        pixels: torch.Tensor,
        labels: torch.Tensor,
        crop: int,
        mode: str = "eager",
        amp_dtype: torch.dtype | None = None,
        channels_last: bool = True,
        task_weights: torch.Tensor | None = None,
        scaler: torch.amp.GradScaler | None = None,
        chunks: int = 1,
        mine: slice | None = None,
        world_size: int = 1,
        ddp: bool = False,
        compile_mode: str = "default",
    ):
        if mode not in ("graph", "compile", "eager"):
            raise ValueError(f"mode must be graph, compile or eager, got {mode!r}")
        self.model, self.step_model, self.optimizer, self.loss_fn = model, step_model, optimizer, loss_fn
        self.pixels, self.labels, self.crop, self.mode = pixels, labels, crop, mode
        self.amp_dtype, self.channels_last, self.task_weights = amp_dtype, channels_last, task_weights
        self.scaler = scaler or torch.amp.GradScaler(pixels.device.type, enabled=False)
        self.chunks, self.mine = chunks, mine or slice(0, chunks)
        self.world_size, self.ddp = world_size, ddp
        self.device = pixels.device
        self.stats = StepStats(self.device)
        self.norm = norm_stats(self.device)
        self.forward = self.forward_loss
        if mode == "compile":
            kwargs = {} if compile_mode == "default" else {"mode": compile_mode}
            if ddp:  # DDP: compile the wrapped module, as torch documents for DDP
                self.step_model = torch.compile(step_model, **kwargs)
            else:  # one process: the crops, model, loss and statistics in one graph
                self.forward = torch.compile(self.forward_loss, **kwargs)
        self._graphs: dict[int, tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}
        self._seen: dict[int, int] = {}

    def forward_loss(self, idx: torch.Tensor, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Crop, normalise, forward and loss of one micro-batch; records its statistics."""
        x = normalise(apply_crops(self.pixels[idx], self.crop, crops), stats=self.norm)
        if not self.channels_last:
            x = x.contiguous()
        y = self.labels[idx]
        amp = self.amp_dtype
        # Autocast's weight-cast cache must be off while a CUDA graph is captured.
        with torch.autocast(self.device.type, dtype=amp or torch.float32, enabled=amp is not None,
                            cache_enabled=self.mode != "graph"):
            logit = self.step_model(x)
        loss = self.loss_fn(logit.float(), self.model.coral_bias, y, self.task_weights)
        self.stats.record(loss, logit, self.model.coral_bias, y)
        return loss, y

    def run(self, idx: torch.Tensor, crops: torch.Tensor) -> None:
        """The step itself, eagerly (also what a CUDA graph captures)."""
        # A graph keeps its gradient buffers: zero them in place instead of freeing them.
        self.optimizer.zero_grad(set_to_none=self.mode != "graph")
        parts = list(zip(idx.tensor_split(self.chunks), crops.tensor_split(self.chunks), strict=True))[self.mine]
        for j, (part_idx, part_crops) in enumerate(parts):
            syncing = not self.ddp or j == len(parts) - 1
            with contextlib.nullcontext() if syncing else self.step_model.no_sync():
                loss, y = self.forward(part_idx, part_crops)
                # Each micro-batch's mean loss, weighted by its share of the global batch, so
                # DDP's average over ranks gives the full batch's mean gradient.
                self.scaler.scale(loss * (y.numel() * self.world_size / idx.numel())).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.stats.end_step()

    def __call__(self, idx: torch.Tensor, crops: torch.Tensor) -> None:
        if self.mode != "graph":
            self.run(idx, crops)
            return
        size = idx.numel()
        captured = self._graphs.get(size)
        if captured is None:
            self._seen[size] = self._seen.get(size, 0) + 1
            if self._seen[size] <= GRAPH_WARMUP:
                self._side_stream_step(idx, crops)
                return
            captured = self._graphs[size] = self._capture(idx, crops)
        else:
            captured[1].copy_(idx)
            captured[2].copy_(crops)
        captured[0].replay()

    def _side_stream_step(self, idx: torch.Tensor, crops: torch.Tensor) -> None:
        """A real step, run eagerly on a side stream as CUDA graph warm-up requires."""
        side, current = torch.cuda.Stream(self.device), torch.cuda.current_stream(self.device)
        side.wait_stream(current)
        with torch.cuda.stream(side):
            self.run(idx, crops)
        current.wait_stream(side)

    def _capture(self, idx: torch.Tensor, crops: torch.Tensor):
        """Record this step (without running it) into a CUDA graph over static inputs."""
        static_idx, static_crops = idx.clone(), crops.clone()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.run(static_idx, static_crops)
        return graph, static_idx, static_crops
