"""The output folder as a Parquet dataset of shards, each published whole by a rename.

A shard is written to a hidden temporary file (``.part-*.parquet.tmp``: Parquet readers skip
names that start with a dot), flushed to disk, then renamed to ``part-*.parquet``. So a killed
job leaves either a complete shard or a temporary file, and resume reads only complete shards.
"""

from __future__ import annotations

import os
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bookcover.errors import UsageError
from bookcover.score.rows import error_reason

SHARD_GLOB = "part-*.parquet"
TEMP_GLOB = ".part-*.parquet.tmp"
SUMMARY_FILE = "summary.json"


def run_tag() -> str:
    """A prefix unique to one run, so shards of a resumed run never collide with earlier ones."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def shard_name(tag: str, index: int) -> str:
    return f"part-{tag}-{index:06d}.parquet"


def write_shard(out: str | Path, name: str, table: Any) -> Path:
    """Write a pyarrow Table as OUT/name atomically (temporary file, fsync, rename)."""
    import pyarrow.parquet as pq

    out = Path(out)
    final = out / name
    temp = out / f".{name}.tmp"
    with open(temp, "wb") as fh:
        pq.write_table(table, fh, compression="zstd")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(temp, final)
    return final


def complete_shards(out: str | Path) -> list[Path]:
    return sorted(Path(out).glob(SHARD_GLOB))


def remove_temp_files(out: str | Path) -> int:
    """Delete the partial shards a killed run left (never read; their covers are scored again)."""
    temps = list(Path(out).glob(TEMP_GLOB))
    for t in temps:
        t.unlink(missing_ok=True)
    return len(temps)


@dataclass
class Written:
    """What the complete shards of a folder hold."""

    paths: set[str] = field(default_factory=set)
    rows: int = 0
    errors: Counter = field(default_factory=Counter)
    models: set[str] = field(default_factory=set)


def read_written(out: str | Path) -> Written:
    """Paths, error reasons and model hashes of every complete shard (only three small columns)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    seen = Written()
    for shard in complete_shards(out):
        try:
            table = pq.read_table(shard, columns=["path", "error", "model_sha256"])
        except (pa.ArrowException, OSError) as exc:
            raise UsageError(f"{shard}: unreadable shard ({str(exc).splitlines()[0][:160]}); move it away to "
                             "score its covers again") from None
        paths = table.column("path").to_pylist()
        seen.paths.update(paths)
        seen.rows += len(paths)
        seen.errors.update(error_reason(e) for e in table.column("error").to_pylist() if e)
        seen.models.update(table.column("model_sha256").unique().to_pylist())
    return seen
