"""Both engines against export/predict.py on 200 real covers, a corrupt JPEG and a text file named .jpg."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bookcover.score import ScoreOptions, score_catalogue
from tests.score.conftest import COVERS, assert_same_rows, read_rows

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def reference(tiny_artifact, catalogue) -> dict[str, dict]:
    """export/predict.py's own output, run as the script a production team runs."""
    res = subprocess.run([sys.executable, str(REPO / "export" / "predict.py"), str(tiny_artifact), "--images",
                          str(catalogue), "--quiet", "--cpu"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 1, res.stderr  # 1: some covers failed (the two bad files), the rest predicted
    records = [json.loads(line) for line in res.stdout.splitlines()]
    return {r["path"]: r for r in records}


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_rows_equal_predict_py(engine, tiny_artifact, catalogue, reference, tmp_path, request):
    if engine == "ray":
        request.getfixturevalue("ray_instance")
    out = tmp_path / "scores"
    summary = score_catalogue(tiny_artifact, out, images=catalogue,
                              options=ScoreOptions(engine=engine, batch_size=32, shard_rows=64, quiet=True))
    rows = read_rows(out)
    assert len(reference) == COVERS + 2
    assert_same_rows(rows, reference)
    bad = {p: r["error"] for p, r in rows.items() if r["error"]}
    assert sorted(Path(p).name for p in bad) == ["corrupt.jpg", "notes.jpg"]
    assert all("\n" not in e for e in bad.values())
    sha = json.loads((tiny_artifact / "manifest.json").read_text())["files"]["model.onnx"]["sha256"]
    assert {r["model_sha256"] for r in rows.values()} == {sha}
    assert summary["covers"] == COVERS + 2 and summary["errors"] == 2 and summary["scored"] == COVERS
    assert summary["errors_by_reason"] == {"corrupt or truncated image": 1, "not an image": 1}
    assert summary["engine"] == engine and summary["model_sha256"] == sha and summary["this_run"]["covers_per_s"] > 0
    assert json.loads((out / "summary.json").read_text()) == summary
    assert not list(out.glob(".*.tmp"))
