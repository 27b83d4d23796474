"""The --out policy for a score job: the shared ownership record (bookcover.outputs), plus resume.

A score job never overwrites: a non-empty OUT is refused unless --resume continues the score job
that recorded writing it. Ray's write tasks run in other processes, so the driver records the
complete shards (and summary.json) itself, after each run; a killed run's shards are recorded by
the resume that follows it.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path

from bookcover.errors import UsageError
from bookcover.outputs import RECORD_FILE, claim, prepare_out_dir, recorded_command, settle
from bookcover.score.shards import SUMMARY_FILE, complete_shards

COMMAND = "score"  # the name its output folders are recorded under (bookcover.outputs)
# What a score job writes into OUT: shards, their temporary files, the summary.
SCORE_OUTPUTS = ("part-*.parquet", ".part-*.parquet.tmp", SUMMARY_FILE, f".{SUMMARY_FILE}.tmp", RECORD_FILE, ".*.tmp")


def claim_out_dir(out: str | Path, resume: bool) -> Path:
    """OUT created (new or empty), or reused with --resume when a score job recorded writing it and
    it holds nothing else; anything else is refused in one line (exit 2)."""
    out = Path(out)
    if out.is_dir() and any(out.iterdir()):
        if not resume:
            raise UsageError(f"--out {out}: already holds files; choose a new or empty folder, or pass --resume "
                             "to continue the job that wrote it")
        if recorded_command(out) != COMMAND:
            raise UsageError(f"--out {out}: --resume continues a score job, but no score job recorded writing this "
                             "folder; choose a new or empty folder")
        foreign = [e.name for e in sorted(out.iterdir()) if not any(fnmatchcase(e.name, p) for p in SCORE_OUTPUTS)]
        if foreign:
            raise UsageError(f"--out {out}: --resume continues a score job, but the folder holds other files "
                             f"({', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''})")
        return prepare_out_dir(out, COMMAND, resume=True)
    return prepare_out_dir(out, COMMAND)


def record_written(out: str | Path) -> None:
    """Record every complete shard and the summary as this job's output (names and sizes)."""
    out = Path(out)
    names = [p.name for p in complete_shards(out)] + ([SUMMARY_FILE] if (out / SUMMARY_FILE).is_file() else [])
    if names:
        claim(out, *names)
        settle(out, *names)
