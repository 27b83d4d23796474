"""Checkpoints: written atomically, loaded with weights_only=True, checked for their kind."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from bookcover.errors import CheckpointError
from bookcover.filemodes import follow_umask

CLASSIFIER_KIND = "bookcover-fast/coral-classifier"
GAN_KIND = "bookcover-fast/dcgan"


TEMP_SUFFIX = ".tmp"


def save_atomic(obj: dict[str, Any], path: str | Path) -> None:
    """Write to a temp file in the same folder, fsync, then rename: a kill never leaves half a file.

    The file gets the mode a plain open() would (0666 less the umask), not mkstemp's 0600.
    A SIGKILL mid-write can leave the temp file (.<name>.XXXX.tmp) behind: runs call
    remove_stale_temporaries when they start or resume.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        follow_umask(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temp files an interrupted save_atomic left in folder; return what was removed.

    Only names save_atomic makes (.<name>.<random>.tmp) are touched, and only regular files.
    Call it when a run starts or resumes: no other writer is then at work in its folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.glob(f".*{TEMP_SUFFIX}") if p.is_file() and not p.is_symlink() and p.name.count(".") >= 3]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def load_checkpoint(path: str | Path, kind: str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely and insist that it is of the expected kind."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickles; the one-line error says it all
            warnings.simplefilter("ignore", UserWarning)
            obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception:  # unpickling errors come in many types
        # torch's own text ends by suggesting weights_only=False, which would run whatever code
        # the file holds: never pass that on.
        raise CheckpointError(
            f"{path}: cannot be loaded safely: not a bookcover-fast checkpoint (or written by an untrusted "
            "program), or a corrupt or truncated file"
        ) from None
    found = obj.get("kind") if isinstance(obj, dict) else None
    if found != kind:
        what = found or "no bookcover-fast kind"
        raise CheckpointError(f"{path}: checkpoint is {what!r}, expected {kind!r}")
    return obj
