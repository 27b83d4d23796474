"""A run directory's shared files: config.json, metrics.jsonl and the figures beside them.

Both features (the classifier and the GAN) write their runs through these helpers, so a run
directory reads the same whichever command made it: one JSON record a line in metrics.jsonl,
the run's configuration in config.json, figures saved the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"


def write_config(out: str | Path, record: dict[str, Any]) -> Path:
    """config.json: what defines the run and the data it saw."""
    path = Path(out) / CONFIG_FILE
    path.write_text(json.dumps(record, indent=2))
    return path


def read_metrics(path: str | Path) -> list[dict]:
    """Every record of a metrics.jsonl, in order; [] when the file does not exist yet."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def append_metrics(path: str | Path, records: Iterable[dict]) -> None:
    """Add records at the end of metrics.jsonl, one JSON object a line."""
    with open(path, "a") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in records))


def rewind_metrics(path: str | Path, epoch: int) -> list[dict]:
    """Keep the records up to `epoch` and rewrite the file with them.

    A run resumed from the checkpoint of `epoch` repeats what came after it, so the records of
    those epochs (written before a kill) must go.
    """
    kept = [r for r in read_metrics(path) if r.get("epoch", 0) <= epoch]
    Path(path).write_text("".join(json.dumps(r) + "\n" for r in kept))
    return kept


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
