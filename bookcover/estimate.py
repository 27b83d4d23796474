"""How long a training run will take: one line, printed once after its first timed steps.

The estimate counts every phase the run still has to do, in units of the measured step time:
the steps left, each epoch's extras (validation, checkpoints, the epoch's grid) and the final
evaluation that runs after the last epoch (issue 18: leaving it out made the line promise
30 s for a 36 s run).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

LONG_RUN_SECONDS = 3600.0


def note(message: str, quiet: bool = False) -> None:
    """One line on stderr, written so that tqdm bars are not torn; nothing when quiet."""
    if quiet:
        return
    from tqdm.auto import tqdm

    tqdm.write(message, file=sys.stderr)


def human_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def estimate_line(seconds: float, what: str, preset: str, remaining_epochs: int, total_epochs: int) -> str:
    """The one line that says how long the rest of a run will take (and that quick exists)."""
    scope = "the whole run" if remaining_epochs == total_epochs else f"the remaining {remaining_epochs} epochs"
    line = f"{what}: estimated {human_duration(seconds)} for {scope} ({total_epochs} epochs, final evaluation included)"
    if preset == "paper" and seconds > LONG_RUN_SECONDS:
        line += "; --preset quick trains a CPU-sized run in minutes"
    return line


def remaining_seconds(
    per_step: float, elapsed: float, untimed: int, steps_left: int, epoch_ends_left: int,
    epoch_overhead_steps: float, final_steps: float, final_seconds: float = 0.0,
) -> float:
    """The estimate's arithmetic: time already spent plus every step-equivalent still to come.

    untimed steps ran before the clock started; each of the epoch_ends_left epoch ends costs
    epoch_overhead_steps; the final evaluation costs final_steps once (its work on the device,
    which scales with the step time) plus final_seconds (its host-side work, which does not).
    """
    return (elapsed + per_step * (untimed + steps_left + epoch_overhead_steps * epoch_ends_left + final_steps)
            + final_seconds)


class RunEstimate:
    """An on_step hook that times the first steps and prints one estimate line for the run.

    The first step is left out (compilation, allocator warm-up); after `probe` more steps (or
    the first step of the next epoch, whichever comes first) the mean step time times the
    steps left, plus `epoch_overhead_steps` step equivalents for each epoch's extras
    (validation, checkpoints) and `final_steps` plus `final_seconds` for the final evaluation,
    gives the estimate.
    `sync` waits for queued device work so that asynchronous steps are timed honestly
    (called twice per run).
    """

    def __init__(
        self,
        what: str,
        preset: str,
        start_epoch: int,
        epochs: int,
        steps_per_epoch: int,
        epoch_overhead_steps: float = 0.0,
        final_steps: float = 0.0,
        final_seconds: float = 0.0,
        quiet: bool = False,
        probe: int = 5,
        sync: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.what, self.preset = what, preset
        self.start_epoch, self.epochs, self.steps_per_epoch = start_epoch, epochs, max(1, steps_per_epoch)
        self.overhead, self.final_steps, self.final_seconds = epoch_overhead_steps, final_steps, final_seconds
        self.quiet, self.probe, self.sync, self.clock = quiet, probe, sync or (lambda: None), clock
        self.t0: float | None = None
        self.first: int | None = None
        self.seconds: float | None = None
        self.line: str | None = None

    def __call__(self, epoch: int, step: int) -> None:
        if self.line is not None or self.quiet:
            return
        index = epoch * self.steps_per_epoch + step  # global step index of the step just done
        if self.t0 is None:
            self.sync()
            self.t0, self.first = self.clock(), index
            return
        done = index - self.first
        if done < self.probe and epoch == self.first // self.steps_per_epoch:
            return
        self.sync()
        elapsed = self.clock() - self.t0
        self.seconds = remaining_seconds(
            per_step=elapsed / done,
            elapsed=elapsed,
            untimed=self.first - self.start_epoch * self.steps_per_epoch + 1,  # steps before the clock started
            steps_left=self.epochs * self.steps_per_epoch - index - 1,
            epoch_ends_left=self.epochs - epoch,  # this epoch's extras are still to come
            epoch_overhead_steps=self.overhead,
            final_steps=self.final_steps,
            final_seconds=self.final_seconds,
        )
        self.line = estimate_line(self.seconds, self.what, self.preset, self.epochs - self.start_epoch, self.epochs)
        note(self.line)


def chain_hooks(*hooks: Callable[[int, int], None] | None) -> Callable[[int, int], None] | None:
    """One on_step hook calling each given hook in turn (None when there are none)."""
    live = [h for h in hooks if h is not None]
    if not live:
        return None

    def hook(epoch: int, step: int) -> None:
        for h in live:
            h(epoch, step)

    return hook
