"""What the command line says when a command stops early: Ctrl-C and out-of-memory, as one line.

The CLI only prints; the wording lives here so that it is tested without a terminal and every
command's message comes from one place.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bookcover.errors import BookcoverError


class OutOfMemory(BookcoverError):
    """The device ran out of memory: one line with what to change, never torch's traceback."""


def last_epoch(checkpoint: Path) -> int | None:
    """The epoch a last.pt holds (read lazily: mmap, weights only), None if there is none to read."""
    import pickle

    import torch

    if not checkpoint.is_file():
        return None
    try:
        return int(torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)["epoch"])
    except (OSError, RuntimeError, pickle.UnpicklingError, KeyError, TypeError, ValueError, EOFError):
        return None  # half-written by someone else, or not ours: nothing to promise


def interrupt_message(command: str, out: str | Path | None, started: float = 0.0) -> str:
    """What Ctrl-C left behind, in one line that fits the command that was running (its
    sub-command path, e.g. "gan train"; ``started``: when it began, as time.time())."""
    out = Path(out) if out is not None else None
    if command in ("train", "gan train") and out is not None:
        epoch = last_epoch(out / "last.pt")
        if epoch is None:
            return f"interrupted before the first epoch finished; {out} holds no checkpoint to resume from"
        return f"interrupted; {out / 'last.pt'} holds epoch {epoch}: continue with --resume"
    if command == "explain" and out is not None:
        done = sum(1 for p in out.glob("*.weights.json") if p.stat().st_mtime >= started) if out.is_dir() else 0
        return f"interrupted; {done} covers done (their overlays and weights are in {out}; no report.md)"
    if command == "export":
        return "interrupted; no artifact was published (the folder appears only once validation passed)"
    if command == "data synth" and out is not None:
        return f"interrupted; {out} holds an unfinished set of covers (no book_data.csv): run the command again"
    if command == "data cache":
        return "interrupted; a cache is kept only once it is complete"
    if command == "study" and out is not None:
        return f"interrupted; {out} holds the runs finished so far (no report.md)"
    return "interrupted"


def as_user_error(exc: BaseException) -> BookcoverError | None:
    """A known failure that is not the user's input, as one line (None: a real bug, keep the traceback).

    Out of device memory is the one such failure today: it says so and what to lower.
    """
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(exc, torch.OutOfMemoryError):
        first = (str(exc).strip().splitlines() or [""])[0][:160]
        return OutOfMemory(f"out of memory on the device ({first}); lower --batch-size, or use --device cpu")
    return None
