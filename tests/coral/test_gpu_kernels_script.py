"""bench/gpu_kernels.py runs on the GPU machine only in bench/gpu_check.sh; here its argument
parsing, CPU path, JSON and markdown are exercised so that a broken script is caught before a
scarce GPU run (no timing assertions)."""

from __future__ import annotations

import json

import pytest

from bookcover.coral import cpp

gpu_kernels = pytest.importorskip("bench.gpu_kernels")


@pytest.mark.skipif(not cpp.available(), reason="bookcover._C is not built")
def test_cpu_path_writes_json_and_markdown(tmp_path):
    gpu_kernels.main(["--out", str(tmp_path), "--device", "cpu", "--impls", "reference", "cpp",
                      "--iters", "2", "--bw-batches", "4096", "--batch", "64"])  # fmt: skip
    result = json.loads((tmp_path / "coral_kernels.json").read_text())
    assert result["impls"] == ["reference", "cpp"]
    assert set(result["latency"]["fwd+bwd"]) == {"reference", "cpp", "auto"}
    assert result["latency"]["routes"] == {"reference": "reference", "cpp": "cpp", "auto": "cpp"}
    passes = {(r["impl"], r["pass"]) for r in result["bandwidth"]}
    assert ("cpp", "forward (train)") in passes and all(r["bytes"] > 0 for r in result["bandwidth"])
    assert "| cpp | cpp |" in (tmp_path / "coral_kernels.md").read_text()
    assert "| auto | cpp |" in (tmp_path / "coral_kernels.md").read_text()
    host = result["host"]
    assert list(host["launch_only"]) == ["cpp op"] and host["launch_only"]["cpp op"] > 0
    assert any("bookcover::coral_loss_fwd" in k for k in host["profiles"]["cpp"])
    assert "Host time, B=64" in (tmp_path / "coral_kernels.md").read_text()


def test_cuda_without_a_gpu_exits_with_one_line(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(SystemExit, match="no CUDA GPU"):
        gpu_kernels.main(["--out", str(tmp_path)])
