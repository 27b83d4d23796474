"""A run directory's log: config.json (what defines the run) and metrics.jsonl (one record a line).

Both features (the classifier and the GAN) write their runs through these helpers, so a run
directory reads the same whichever command made it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bookcover.jsonio import dumps_json, write_json

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"


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
