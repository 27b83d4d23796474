"""`data cache`: decode every cover once and summarise the set, optionally into an --out folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CACHE_OUTPUTS = ("data_summary.json", "skipped_covers.csv")  # what `data cache --out` writes


def cache_summary(data: str | Path, size: int = 128, levels: int = 5, seed: int = 0, score_column: str | None = None,
                  out: str | Path | None = None, overwrite: bool = False, quiet: bool = False) -> dict[str, Any]:
    """Build (or reuse) the cache of `data` and return its summary; with `out`, also write
    data_summary.json and skipped_covers.csv there under the --out policy (checked before any
    cover is decoded)."""
    from bookcover.data.dataset import prepare_dataset
    from bookcover.runs import check_out_dir, prepare_out_dir, write_json

    out = Path(out) if out is not None else None
    if out is not None:
        check_out_dir(out, overwrite=overwrite, ours=CACHE_OUTPUTS)
    ds = prepare_dataset(data, size=(size, size), num_levels=levels, seed=seed, score_column=score_column, quiet=quiet)
    summary = ds.summary()
    built = ds.cache.build_seconds
    summary["cache"] = str(ds.cache.directory)
    summary["cache_built_seconds"] = built
    if built:
        summary["covers_per_second"] = (len(ds.cache.paths) + len(ds.cache.skipped)) / built
    if out is not None:
        prepare_out_dir(out, overwrite=overwrite, ours=CACHE_OUTPUTS)
        write_json(out / "data_summary.json", summary)
        ds.write_skipped(out / "skipped_covers.csv")
    return summary
