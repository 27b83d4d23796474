"""A run directory's shared files, and the one --out policy every command follows.

Both features (the classifier and the GAN) write their runs through these helpers, so a run
directory reads the same whichever command made it: one JSON record a line in metrics.jsonl,
the run's configuration in config.json, figures saved the same way.

The --out policy (prepare_out_dir / prepare_out_file), written once for every command:

- a new folder, or an empty one, is fine;
- an existing run only where the command continues it (``resume=True``);
- anything else is a one-line error naming the flag, unless ``overwrite=True``. Overwrite
  removes the command's own output first, and refuses a folder holding anything that
  command does not write: it never deletes what does not look like ours.

JSON: every file the project writes goes through dumps_json / write_json, which write
``null`` for undefined numbers (NaN, inf), so each file is valid JSON for any reader.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from bookcover.errors import DataError, UsageError

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"

# What the run and evaluation commands write into their folders: --overwrite may remove these
# (and only these). A command that writes other names passes its own patterns.
CLASSIFIER_RUN_FILES = (
    CONFIG_FILE, METRICS_FILE, "best.pt", "last.pt", "curves.png", "confusion.png", "skipped_covers.csv",
    "results.json", "report.md", ".*.tmp",
)
GAN_RUN_FILES = (
    CONFIG_FILE, METRICS_FILE, "last.pt", "grids", "curves.png", "evaluation.json", "report.md", "samples.png",
    "nearest.png", ".*.tmp",
)
EVALUATION_FILES = ("results.json", "evaluation.json", "report.md", "confusion.png", "samples.png", "nearest.png")
RUN_OUTPUTS = tuple(dict.fromkeys(CLASSIFIER_RUN_FILES + GAN_RUN_FILES + EVALUATION_FILES))


class OutPathError(UsageError):
    """An output path the --out policy refuses (it holds files, or a file is in the way): exit 2."""


# --- JSON ---------------------------------------------------------------------------------


def jsonable(obj: Any) -> Any:
    """obj with NaN/inf as None, numpy scalars and arrays as Python numbers and lists."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {(k if isinstance(k, str) else str(k)): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, bool | int | str) or obj is None:
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    tolist = getattr(obj, "tolist", None)  # numpy scalars and arrays (and torch tensors)
    if callable(tolist):
        return jsonable(tolist())
    return obj  # json.dumps will say what it cannot write


def dumps_json(obj: Any, indent: int | None = None) -> str:
    """JSON text with null for undefined numbers: never the bare NaN that strict readers reject."""
    return json.dumps(jsonable(obj), indent=indent, allow_nan=False)


def write_json(path: str | Path, obj: Any, indent: int | None = 2) -> Path:
    """Write obj as JSON (null for NaN/inf), ending with a newline."""
    path = Path(path)
    path.write_text(dumps_json(obj, indent) + "\n")
    return path


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


# --- run-directory files ------------------------------------------------------------------


def write_config(out: str | Path, record: dict[str, Any]) -> Path:
    """config.json: what defines the run and the data it saw."""
    return write_json(Path(out) / CONFIG_FILE, record)


def _undefined_as_nan(record: dict) -> dict:
    """A metrics record as written (null for undefined numbers) read back with NaN in their place."""
    return {k: math.nan if v is None else v for k, v in record.items()}


def read_metrics(path: str | Path) -> list[dict]:
    """Every record of a metrics.jsonl, in order, null read back as NaN; [] when the file does not exist yet."""
    path = Path(path)
    if not path.is_file():
        return []
    return [_undefined_as_nan(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def append_metrics(path: str | Path, records: Iterable[dict]) -> None:
    """Add records at the end of metrics.jsonl, one JSON object a line."""
    with open(path, "a") as fh:
        fh.write("".join(dumps_json(r) + "\n" for r in records))


def rewind_metrics(path: str | Path, epoch: int) -> list[dict]:
    """Keep the records up to `epoch` and rewrite the file with them.

    A run resumed from the checkpoint of `epoch` repeats what came after it, so the records of
    those epochs (written before a kill) must go.
    """
    kept = [r for r in read_metrics(path) if r.get("epoch", 0) <= epoch]
    Path(path).write_text("".join(dumps_json(r) + "\n" for r in kept))
    return kept


# --- the --out policy ---------------------------------------------------------------------


def _blocking_file(path: Path) -> Path | None:
    """The first existing ancestor of path when it is a file (a folder cannot be made below it)."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def _is_ours(name: str, ours: Iterable[str]) -> bool:
    return any(fnmatchcase(name, pattern) for pattern in ours)


def _listing(names: list[str], most: int = 3) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def check_out_dir(
    path: str | Path,
    flag: str = "--out",
    *,
    resume: bool = False,
    overwrite: bool = False,
    ours: Iterable[str] = RUN_OUTPUTS,
) -> list[Path]:
    """Apply the --out policy to a folder without touching it; return what overwrite must remove.

    Raises OutPathError (one line, naming the flag) when the folder may not be used.
    """
    path = Path(path)
    blocking = _blocking_file(path)
    if blocking is not None:
        raise OutPathError(f"{flag} {path}: {blocking} is a file, not a folder; choose a new or empty folder")
    if not path.exists() and not path.is_symlink():
        return []
    if not path.is_dir():
        raise OutPathError(f"{flag} {path}: is a file, not a folder; choose a new or empty folder")
    entries = sorted(path.iterdir())
    if not entries or resume:
        return []
    if not overwrite:
        raise OutPathError(f"{flag} {path}: already holds files; choose a new or empty folder, or pass --overwrite")
    foreign = [e.name for e in entries if not _is_ours(e.name, ours)]
    if foreign:
        raise OutPathError(
            f"{flag} {path}: holds files this command does not write ({_listing(foreign)}); --overwrite only "
            "replaces its own output, so choose a new or empty folder"
        )
    return entries


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry)
    else:
        entry.unlink(missing_ok=True)


def _make_dir(path: Path, flag: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutPathError(f"{flag} {path}: cannot create the folder ({exc.strerror or exc})") from None


def prepare_out_dir(
    path: str | Path,
    flag: str = "--out",
    resume: bool = False,
    overwrite: bool = False,
    ours: Iterable[str] = RUN_OUTPUTS,
) -> Path:
    """The folder an output goes to, under the --out policy: created, and with overwrite first
    emptied of this command's own files (`ours`: names or fnmatch patterns)."""
    path = Path(path)
    ours = tuple(ours)
    for entry in check_out_dir(path, flag, resume=resume, overwrite=overwrite, ours=ours):
        _remove(entry)
    _make_dir(path, flag)
    return path


def check_out_file(path: str | Path, flag: str = "--out", *, overwrite: bool = False) -> Path:
    """Apply the --out policy to a single output file without touching it."""
    path = Path(path)
    blocking = _blocking_file(path)
    if blocking is not None:
        raise OutPathError(f"{flag} {path}: {blocking} is a file, not a folder")
    if path.is_dir():
        raise OutPathError(f"{flag} {path}: is a folder; name the file to write")
    if path.exists() and not overwrite:
        raise OutPathError(f"{flag} {path}: already exists; choose a new file name, or pass --overwrite")
    return path


def prepare_out_file(path: str | Path, flag: str = "--out", overwrite: bool = False) -> Path:
    """A file path under the --out policy, its folder created: an existing file only with overwrite."""
    path = check_out_file(path, flag, overwrite=overwrite)
    _make_dir(path.parent, flag)
    return path


# --- a training run's folder: start or resume ---------------------------------------------


def check_start_or_resume(out: Path, resume: bool, overwrite: bool, ours: Iterable[str]) -> Path:
    """The --resume / --overwrite rules of `train` and `gan train`; returns the run's last.pt.

    Resuming needs last.pt (else one line saying why). A new run refuses a folder holding a run
    unless overwrite, and follows the --out policy. Touches nothing.
    """
    last = out / "last.pt"
    if resume and overwrite:
        raise UsageError("--resume continues a run and --overwrite starts it again: pass only one of them")
    if resume and not last.is_file():
        why = (
            "it was stopped before its first checkpoint; start it again with --overwrite"
            if out.is_dir() and any(out.iterdir())
            else "drop --resume to start a new run"
        )
        raise UsageError(f"--resume: {out} holds no last.pt to continue ({why})")
    if not resume:
        if last.is_file() and not overwrite:
            raise UsageError(
                f"--out {out}: already holds a run (last.pt); pass --resume to continue it, --overwrite to start "
                "again, or choose a new or empty folder"
            )
        check_out_dir(out, overwrite=overwrite, ours=ours)
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


# --- progress notes -----------------------------------------------------------------------


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


LONG_RUN_SECONDS = 3600.0


def estimate_line(seconds: float, what: str, preset: str, remaining_epochs: int, total_epochs: int) -> str:
    """The one line that says how long the rest of a run will take (and that quick exists)."""
    scope = "the whole run" if remaining_epochs == total_epochs else f"the remaining {remaining_epochs} epochs"
    line = f"{what}: estimated {human_duration(seconds)} for {scope} ({total_epochs} epochs)"
    if preset == "paper" and seconds > LONG_RUN_SECONDS:
        line += "; --preset quick trains a CPU-sized run in minutes"
    return line


class RunEstimate:
    """An on_step hook that times the first steps and prints one estimate line for the run.

    The first step is left out (compilation, allocator warm-up); after `probe` more steps (or
    the first step of the next epoch, whichever comes first) the mean step time times the
    steps left, plus `epoch_overhead` seconds-per-step equivalents for each epoch's extras
    (validation, checkpoints), gives the estimate. `sync` waits for queued device work so
    that asynchronous steps are timed honestly (called twice per run).
    """

    def __init__(
        self,
        what: str,
        preset: str,
        start_epoch: int,
        epochs: int,
        steps_per_epoch: int,
        epoch_overhead_steps: float = 0.0,
        quiet: bool = False,
        probe: int = 5,
        sync: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.what, self.preset = what, preset
        self.start_epoch, self.epochs, self.steps_per_epoch = start_epoch, epochs, max(1, steps_per_epoch)
        self.overhead = epoch_overhead_steps
        self.quiet, self.probe, self.sync, self.clock = quiet, probe, sync or (lambda: None), clock
        self.t0: float | None = None
        self.first: int | None = None
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
        per_step = elapsed / done
        untimed = self.first - self.start_epoch * self.steps_per_epoch + 1  # steps before the clock started
        steps_left = self.epochs * self.steps_per_epoch - index - 1
        epoch_ends_left = self.epochs - epoch  # this epoch's extras are still to come
        seconds = per_step * (untimed + steps_left + self.overhead * epoch_ends_left) + elapsed
        self.line = estimate_line(seconds, self.what, self.preset, self.epochs - self.start_epoch, self.epochs)
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


# --- file modes ---------------------------------------------------------------------------


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore at once
    os.umask(mask)
    return mask


def follow_umask(path: str | Path, directory: bool = False) -> None:
    """Give a file made by tempfile (0600, or 0700 for folders) the mode a plain open/mkdir gives."""
    base = 0o777 if directory else 0o666
    os.chmod(path, base & ~current_umask())


# --- figures ------------------------------------------------------------------------------


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (no display needed), imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, out: str | Path) -> None:
    """Lay out, write and close a figure: every PNG of a run is saved the same way."""
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    pyplot().close(fig)
