"""Fixtures for the score tests: a tiny exported artifact, real covers with two bad files, and one
Ray instance (2 CPUs, a 100 MB object store) shared by the in-process Ray tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch import nn

from tests.explain.tiny_model import TinyCoral  # seeded; its time is negligible: the tests exercise the pipeline

COVERS = 200
RESIZE, CROP = 36, 32


def make_artifact(folder: Path, model: nn.Module, resize: int, crop: int, levels: int = 5) -> Path:
    """An artifact folder the consumer accepts: model.onnx with bookcover metadata + manifest.json."""
    from bookcover.export import export_onnx, write_manifest

    folder.mkdir(parents=True, exist_ok=True)
    spec = {"resize": [resize, resize], "crop": crop, "dtype": "uint8", "layout": "NHWC RGB"}
    export_onnx(model.eval(), crop, folder / "model.onnx", {"bookcover.input_spec": spec, "bookcover.levels": levels})
    write_manifest(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_artifact(tmp_path_factory) -> Path:
    return make_artifact(tmp_path_factory.mktemp("score-artifact") / "tiny", TinyCoral(), RESIZE, CROP)


@pytest.fixture(scope="session")
def catalogue(goodreads_sample, tmp_path_factory) -> Path:
    """200 real covers (symlinks) plus a corrupt JPEG and a text file named .jpg, in one folder."""
    folder = tmp_path_factory.mktemp("catalogue") / "covers"
    folder.mkdir()
    for i in range(COVERS):
        (folder / f"{i}.jpg").symlink_to(goodreads_sample / "images" / f"{i}.jpg")
    data = (goodreads_sample / "images" / "0.jpg").read_bytes()
    (folder / "corrupt.jpg").write_bytes(data[: len(data) // 3])
    (folder / "notes.jpg").write_text("not a cover, just text\n")
    return folder


@pytest.fixture(scope="session")
def ray_instance():
    """One local Ray instance for the in-process tests; score_catalogue reuses it and leaves it up."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, object_store_memory=100 * 1024 * 1024, include_dashboard=False, logging_level="warning",
             log_to_driver=False)
    yield ray
    ray.shutdown()


def read_rows(out: Path) -> dict[str, dict]:
    """Every row of OUT's complete shards by path; a path written twice fails the test."""
    import pyarrow.parquet as pq

    rows: dict[str, dict] = {}
    for shard in sorted(out.glob("part-*.parquet")):
        for row in pq.read_table(shard).to_pylist():
            assert row["path"] not in rows, f"{row['path']} written twice"
            rows[row["path"]] = row
    return rows


def assert_same_rows(got: dict[str, dict], want: dict[str, dict], atol: float = 1e-6) -> None:
    """Same paths, same levels and errors, probabilities within atol."""
    assert set(got) == set(want)
    for path, w in want.items():
        g = got[path]
        assert (g["error"] is None) == (w.get("error") is None), path
        if w.get("error") is not None:
            assert g["level"] is None and g["probas"] is None
            continue
        assert g["level"] == w["level"], path
        for key in ("probas", "level_probs"):
            assert len(g[key]) == len(w[key]) and max(abs(a - b) for a, b in zip(g[key], w[key], strict=True)) <= atol
        assert abs(g["expected_level"] - w["expected_level"]) <= atol * len(g["probas"])
