"""pytest-benchmark: onnxruntime (CPU) vs eager PyTorch on the exported CORAL classifier.

Run with ``pytest bench/test_bench_onnx.py --benchmark-only``; groups pair the two sides per
batch size. The ratio table for RESULTS.md comes from ``python bench/onnx_speed.py``, which
alternates the two sides call by call.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.onnx_speed import build_pair, pixels

CROP = 120


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return build_pair(CROP, threads=2, folder=tmp_path_factory.mktemp("onnx-bench"))


@pytest.mark.parametrize("batch", [1, 64])
@pytest.mark.parametrize("impl", ["eager", "ort"])
def test_bench_onnx_vs_eager(benchmark, pair, impl, batch):
    benchmark.group = f"coral-resnet34 {CROP}px batch {batch}"
    x = pixels(batch, CROP)
    fn = pair.eager if impl == "eager" else pair.ort
    rounds = 20 if batch == 1 else 3
    out = benchmark.pedantic(fn, args=(x,), rounds=rounds, warmup_rounds=1)
    other = (pair.ort if impl == "eager" else pair.eager)(x)
    np.testing.assert_allclose(out["probas"], other["probas"], atol=1e-4)
    assert out["rank"].dtype == np.int64 and out["rank"].shape == (batch,)
