"""Start or resume a training run (`train`, `gan train`), and find the data a checkpoint recorded.

A run folder is continued only where its ownership record (bookcover.outputs) says the same
command made it, and only from its last.pt. The data path a checkpoint recorded is found
again from wherever the command runs now (evaluate and export read it too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bookcover.errors import DataError, UsageError
from bookcover.outputs import check_out_dir

LAST_CHECKPOINT = "last.pt"


def check_start_or_resume(out: Path, resume: bool, overwrite: bool, command: str) -> Path:
    """The --resume / --overwrite rules of `train` and `gan train`; returns the run's last.pt.

    Resuming needs last.pt (else one line saying why) in a folder `command` recorded as its own.
    A new run refuses a folder holding a run unless overwrite, and follows the --out policy.
    Touches nothing.
    """
    last = out / LAST_CHECKPOINT
    if resume and overwrite:
        raise UsageError("--resume continues a run and --overwrite starts it again: pass only one of them")
    if resume and not last.is_file():
        why = (
            "it was stopped before its first checkpoint; start it again with --overwrite"
            if out.is_dir() and any(out.iterdir())
            else "drop --resume to start a new run"
        )
        raise UsageError(f"--resume: {out} holds no {LAST_CHECKPOINT} to continue ({why})")
    if not resume and last.is_file() and not overwrite:
        raise UsageError(
            f"--out {out}: already holds a run ({LAST_CHECKPOINT}); pass --resume to continue it, --overwrite to "
            "start again, or choose a new or empty folder"
        )
    check_out_dir(out, command, resume=resume, overwrite=overwrite)
    return last


def resumed_config(config: Any, last: Path, epochs: int | None) -> Any:
    """A resumed run's own configuration (read from last.pt), its data found from here and, when
    `epochs` is given, extended to that many epochs."""
    config.data = locate_recorded_data(config.data, last, RESUME_DATA_HINT)
    if epochs is not None:
        config.epochs = epochs
    return config


def nothing_to_do(out: Path, done: int, epochs: int | None) -> str:
    """Why a resumed run that already has its epochs stops there (runs are extended, never shortened)."""
    if epochs is not None and epochs < done:
        return f"{out}: the run already has {done} epochs, more than --epochs {epochs}; nothing to do (runs are never shortened)"
    return f"{out}: the run already finished its {done} epochs; nothing to do (pass --epochs N above {done} to extend it)"


# --- recorded paths -----------------------------------------------------------------------


RESUME_DATA_HINT = "resume from the folder training ran in, or put the covers back"


def locate_recorded_data(recorded: str | None, checkpoint: str | Path, hint: str = "pass --data") -> str | None:
    """The absolute data path a checkpoint's recorded one means, from wherever we run now.

    New checkpoints record it absolute. Older ones kept it as typed, relative to the folder
    training ran in, which we do not know: try it from here, then from the checkpoint's folder
    and each folder above it. None (the synthetic default) stays None. When nothing is found
    the one-line error ends with `hint`.
    """
    if recorded is None:
        return None
    path = Path(recorded)
    if path.is_absolute():
        if path.exists():
            return str(path)
        raise DataError(f"{checkpoint}: the data it was trained on, {path}, no longer exists; {hint}")
    tried = [Path.cwd() / path] + [folder / path for folder in Path(checkpoint).resolve().parents]
    for candidate in tried:
        if candidate.exists():
            return str(candidate.resolve())
    raise DataError(
        f"{checkpoint}: its data path {recorded!r} was recorded relative to where training ran and is not found "
        f"from here (tried {tried[0]}, {tried[1]} and {len(tried) - 2} folders above); {hint}"
    )


def absolute_data(data: str | None) -> str | None:
    """A data path as an absolute one (None stays None): checkpoints must not depend on the cwd."""
    return None if data is None else str(Path(data).resolve())
