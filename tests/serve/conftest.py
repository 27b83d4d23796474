"""One tiny exported artifact for every serve test (export takes tens of seconds on a small CPU),
plus the consumer's own predictions, which the server must reproduce."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def served(tiny_run, tmp_path_factory) -> Path:
    """The artifact folder of tiny_run/best.pt (fp32 only)."""
    from bookcover.export import export_artifact

    out = tmp_path_factory.mktemp("serve") / "artifact"
    export_artifact(tiny_run / "best.pt", out, max_covers=20, quiet=True)
    return out


@pytest.fixture(scope="session")
def real_covers(goodreads_sample) -> list[Path]:
    """50 real covers spread over the sample."""
    images = sorted((goodreads_sample / "images").glob("*.jpg"), key=lambda p: int(p.stem) if p.stem.isdigit() else 0)
    step = max(1, len(images) // 50)
    return images[::step][:50]


@pytest.fixture(scope="session")
def consumer_predictions(served, real_covers) -> dict[str, dict]:
    """export/predict.py's records for the real covers, by file name."""
    from bookcover.consumer import load_artifact

    art = load_artifact(served)
    return {Path(r["path"]).name: r for r in art.predict_files(real_covers)}
