"""OUT/summary.json and the one summary line: what the folder holds and how fast this run was."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bookcover.jsonio import dumps_json
from bookcover.score.shards import SUMMARY_FILE, Written


def build_summary(written: Written, *, run_rows: int, seconds: float, engine: str, workers: dict[str, Any],
                  model_sha256: str, artifact: str, inputs: int, resumed_from: int) -> dict[str, Any]:
    errors = int(sum(written.errors.values()))
    return {
        "covers": written.rows,
        "scored": written.rows - errors,
        "errors": errors,
        "errors_by_reason": dict(written.errors.most_common()),
        "inputs": inputs,
        "covers_per_s": round(run_rows / seconds, 2) if seconds > 0 else None,  # this run's
        "this_run": {"covers": run_rows, "seconds": round(seconds, 3),
                     "covers_per_s": round(run_rows / seconds, 2) if seconds > 0 else None,
                     "resumed_from": resumed_from},
        "engine": engine,
        "workers": workers,
        "artifact": artifact,
        "model_sha256": model_sha256,
    }


def write_summary(out: str | Path, summary: dict[str, Any]) -> Path:
    """Atomically (temp file + rename), so a kill never leaves half a summary."""
    path = Path(out) / SUMMARY_FILE
    temp = path.with_name(f".{SUMMARY_FILE}.tmp")
    temp.write_text(dumps_json(summary, indent=2) + "\n")
    os.replace(temp, path)
    return path


def summary_line(summary: dict[str, Any], out: str | Path) -> str:
    run = summary["this_run"]
    rate = f"{run['covers_per_s']:.1f} covers/s" if run["covers_per_s"] else "nothing left to score"
    resumed = f" (resumed: {run['resumed_from']} already done)" if run["resumed_from"] else ""
    return (f"scored {run['covers']} covers in {run['seconds']:.1f} s, {rate}, engine {summary['engine']}{resumed}; "
            f"{out} holds {summary['covers']} rows, {summary['errors']} errors")
