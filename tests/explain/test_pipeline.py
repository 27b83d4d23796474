"""Many covers: workers prepare the next covers, with results identical to the sequential path."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from bookcover.cli import main
from bookcover.data.synth import synthesise
from bookcover.errors import BookcoverError
from bookcover.explain import adapters
from bookcover.explain.explainer import ExplainOptions
from bookcover.explain.prepare import CoverPipeline, prepare_cover, resolve_workers
from bookcover.explain.run import explain_covers
from tests.explain.helpers import tiny_model


@pytest.fixture(scope="module")
def covers(tmp_path_factory):
    return synthesise(tmp_path_factory.mktemp("pipeline") / "covers", n=12, seed=4, quiet=True)


def test_worker_pipeline_gives_the_sequential_results(covers, tmp_path):
    """Four covers (badge covers among them, and an unreadable file) through 2 worker processes
    and inline: byte-identical weights JSON, overlays, report and pointing game."""
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    paths = [covers / "images" / f"{i}.jpg" for i in range(3)] + [bad] + [covers / "images" / "3.jpg"]
    model, options = tiny_model(), ExplainOptions(samples=80, seed=2)
    inline = explain_covers(model, paths, tmp_path / "inline", options, quiet=True)
    with CoverPipeline(2) as pipeline:
        pooled = explain_covers(model, paths, tmp_path / "pooled", options, quiet=True, pipeline=pipeline)
    assert pooled.explained == inline.explained and len(inline.explained) == 4
    assert pooled.skipped == inline.skipped and "broken.jpg" in inline.skipped[0]
    assert json.dumps(pooled.pointing, sort_keys=True) == json.dumps(inline.pointing, sort_keys=True)  # nan-safe
    assert inline.pointing["badge_covers"] >= 1
    names = sorted(p.name for p in (tmp_path / "inline").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "pooled").iterdir())
    for name in names:
        assert (tmp_path / "pooled" / name).read_bytes() == (tmp_path / "inline" / name).read_bytes(), name


def test_a_prepared_cover_is_what_the_sequential_path_computes(covers):
    path = str(covers / "images" / "1.jpg")
    options = ExplainOptions(samples=30, seed=9)
    with CoverPipeline(1) as pipeline:
        (pooled,) = list(pipeline.prepare([path], (48, 48), options))
    inline = prepare_cover(path, (48, 48), options)
    for field in ("image", "segments", "masks", "fill"):
        assert np.array_equal(getattr(pooled.prepared, field), getattr(inline.prepared, field)), field


def test_workers_option():
    assert resolve_workers("3", "cuda", 10) == 3
    assert resolve_workers(0, "cuda", 10) == 0
    assert resolve_workers("auto", "cpu", 10) == 0
    assert 1 <= resolve_workers("auto", "cuda:0", 10) <= 4
    assert resolve_workers("auto", "cuda", 1) == 1  # one cover: it is segmented while the model loads
    with pytest.raises(BookcoverError, match="--workers"):
        resolve_workers("many", "cuda", 10)
    res = CliRunner().invoke(main, ["explain", "--onnx", "x", "a.jpg", "--out", "o", "--workers", "-1"])
    assert res.exit_code != 0 and "--workers must be auto or a number" in res.output and "Traceback" not in res.output


def test_cuda_chunks_are_powers_of_two_and_padding_changes_nothing(monkeypatch):
    """On CUDA every model call takes a power of two of samples (a last partial chunk padded by
    repeating its last sample), so a run meets a handful of batch shapes, not one per cover."""
    base = tiny_model()
    sizes = []

    class FakeCuda:
        image_size, crop, num_levels = base.image_size, base.crop, base.num_levels
        device = types.SimpleNamespace(type="cuda")

        def run(self, inputs):
            sizes.append(inputs.shape[0])
            return base.run(inputs)

    monkeypatch.setattr(adapters, "auto_chunk", lambda model: 64)
    inputs = base.prepare(torch.randint(0, 256, (150, base.crop, base.crop, 3), dtype=torch.uint8))
    got = adapters.predict_chunked(FakeCuda(), 150, lambda a, b: inputs[a:b])
    want = adapters.predict_chunked(base, 150, lambda a, b: inputs[a:b], batch=150)
    assert sizes == [64, 64, 32]  # 150 = 64 + 64 + 22, the last padded to 32
    for key in ("probas", "level_probs"):
        assert got[key].shape[0] == 150
        torch.testing.assert_close(got[key], want[key])
    sizes.clear()
    adapters.predict_chunked(FakeCuda(), 3, lambda a, b: inputs[a:b])
    assert sizes == [adapters.CUDA_MIN_CHUNK]
