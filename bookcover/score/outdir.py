"""The --out policy for a score job, in one function (the lead adapts it to the ownership record)."""

from __future__ import annotations

from pathlib import Path

from bookcover.errors import UsageError
from bookcover.runs import prepare_out_dir

# What a score job writes into OUT: shards, their temporary files, the summary.
SCORE_OUTPUTS = ("part-*.parquet", ".part-*.parquet.tmp", "summary.json", ".summary.json.tmp")


def claim_out_dir(out: str | Path, resume: bool) -> Path:
    """OUT created, or reused with --resume when it holds only a score job's files; a non-empty
    OUT without --resume is refused in one line (exit 2)."""
    out = Path(out)
    if resume and out.is_dir():
        from fnmatch import fnmatch

        foreign = [e.name for e in sorted(out.iterdir())
                   if not any(fnmatch(e.name, pattern) for pattern in SCORE_OUTPUTS) and not e.name.startswith(".bookcover")]
        if foreign:
            raise UsageError(f"--out {out}: --resume continues a score job, but the folder holds other files "
                             f"({', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''})")
    elif out.is_dir() and any(out.iterdir()):
        raise UsageError(f"--out {out}: already holds files; choose a new or empty folder, or pass --resume "
                         "to continue the job that wrote it")
    return prepare_out_dir(out, resume=resume, overwrite=False, ours=SCORE_OUTPUTS)
