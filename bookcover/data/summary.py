"""`data cache`: decode every cover once, and write what it found (data_summary.json,
skipped_covers.csv) into a folder under the --out policy (bookcover.outputs)."""

from __future__ import annotations

import time
from pathlib import Path

from bookcover.jsonio import write_json
from bookcover.outputs import check_out_dir, prepare_out_dir, writing

COMMAND = "data cache"  # the name its output folders are recorded under
SUMMARY_FILE = "data_summary.json"
SKIPPED_FILE = "skipped_covers.csv"


def cache_and_summarise(
    data: str | Path, *, size: int, levels: int, score_column: str | None, seed: int, out: str | Path | None,
    overwrite: bool, quiet: bool, max_covers: int | None = None,
) -> tuple[dict, str]:
    """Build (or reuse) the decode-once cache of data; return its summary and a one-line note.

    out, when given, is checked before any cover is decoded and written only after.
    """
    from bookcover.data.dataset import prepare_dataset

    if out is not None:
        check_out_dir(out, COMMAND, overwrite=overwrite)
    t0 = time.perf_counter()
    ds = prepare_dataset(data, size=(size, size), num_levels=levels, seed=seed, score_column=score_column,
                         max_covers=max_covers, quiet=quiet)
    took = time.perf_counter() - t0
    summary = ds.summary()
    built = ds.cache.build_seconds
    summary["cache"] = str(ds.cache.directory)
    summary["cache_built_seconds"] = built
    if built:
        summary["covers_per_second"] = (len(ds.cache.paths) + len(ds.cache.skipped)) / built
    if out is not None:
        out = prepare_out_dir(out, COMMAND, overwrite=overwrite)
        with writing(out, SUMMARY_FILE, SKIPPED_FILE):
            write_json(out / SUMMARY_FILE, summary)
            ds.write_skipped(out / SKIPPED_FILE)
    line = ("built" if built else "reused") + f" cache in {took:.1f} s; {len(ds.cache.skipped)} covers skipped"
    return summary, line
