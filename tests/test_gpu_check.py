"""bench/gpu_check.sh, checked without a GPU: valid bash, fits its 8 minutes, collects its CUDA
tests where lime cannot be imported (as on the GPU image), and summarises an empty run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

SCRIPTS = ["bench/gpu_check.sh", "bench/cuda_tests.sh", "bench/ort_gpu_parts.sh"]
DEVICE_LIMIT_S = 8 * 60


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_are_valid_bash(script):
    done = subprocess.run(["bash", "-n", str(REPO / script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def dry_run() -> list[str]:
    env = {**os.environ, "GPU_CHECK_DRY_RUN": "1"}
    done = subprocess.run(["bash", str(REPO / "bench/gpu_check.sh"), "/nonexistent-out"], capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def worst_case_seconds(lines: list[str]) -> float:
    """Every step at its timeout; a background step overlaps the steps until its wait."""
    t, started, limits = 0.0, {}, {}
    for line in lines:
        if m := re.match(r"step (\S+) (\d+): ", line):
            t += int(m[2])
        elif m := re.match(r"bg (\S+) (\d+): ", line):
            started[m[1]], limits[m[1]] = t, int(m[2])
        elif m := re.match(r"wait (\S+)$", line):
            t = max(t, started.pop(m[1]) + limits[m[1]])
    assert not started, f"background steps never waited for: {started}"
    return t


def test_every_step_has_a_timeout_and_all_fit_in_eight_minutes():
    lines = dry_run()
    steps = {m[1]: line for line in lines if (m := re.match(r"(?:step|bg) (\S+) \d+: ", line))}
    for name in ("build", "cuda_tests", "coral_kernels", "throughput", "train", "gan_train", "lime",
                 "explain_startup", "explain_16", "onnx_gpu"):
        assert name in steps, name
    assert "bench/gpu_kernels.py --out" in steps["coral_kernels"]
    assert "gan train --preset quick" in steps["gan_train"] and "--images" in steps["explain_16"]
    assert "bench/explain_startup.py" in steps["explain_startup"]
    worst = worst_case_seconds(lines)
    assert worst + 15 <= DEVICE_LIMIT_S, f"worst case {worst} s (+ setup and packing) exceeds 8 minutes"
    budget = int(re.search(r"GPU_CHECK_BUDGET:-(\d+)", (REPO / "bench/gpu_check.sh").read_text())[1])
    assert budget <= DEVICE_LIMIT_S - 5


def test_cuda_tests_collect_where_lime_cannot_be_imported(tmp_path):
    """The GPU image has no lime: the same pytest selection gpu_check.sh runs must still collect
    (rc 0) and find the CUDA tests of every feature, with lime's module failing to import."""
    fake = tmp_path / "nolime"
    fake.mkdir()
    (fake / "lime.py").write_text('raise ImportError("no lime on the GPU image")\n')
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": f"{fake}{os.pathsep}{REPO}"}
    done = subprocess.run(["bash", str(REPO / "bench/cuda_tests.sh"), "--collect-only", "-q"], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    collected = [x for x in done.stdout.splitlines() if "::" in x]
    assert "tests/explain/test_parity.py" in done.stderr  # named as ignored
    for where in ("tests/coral/test_fused.py", "tests/classifier/test_step.py", "tests/gan/test_memory_format.py"):
        assert any(x.startswith(where) for x in collected), where
    assert not any("test_parity" in x for x in collected)


def test_summary_of_an_empty_run_says_no_result(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "bench/gpu_summary.py"), str(tmp_path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "cuda tests: no result" in done.stdout and "throughput: no result" in done.stdout
    assert "train (paper preset): no result" in done.stdout


def test_lime_speed_many_covers_runs_on_cpu(synth_covers, tmp_path, monkeypatch):
    """The GPU check's warm-process explain timing (bench/lime_speed.many_covers) runs end to end:
    its imports and its call of explain_covers follow the package (a CPU run, tiny model)."""
    monkeypatch.syspath_prepend(str(REPO))
    from bench import lime_speed

    real = lime_speed.make_model
    monkeypatch.setattr(lime_speed, "make_model", lambda kind, size, crop, device: real("tiny", 64, 56, device))
    result = lime_speed.many_covers(synth_covers / "images", tmp_path, samples=40, n=3, device="cpu")
    assert result["covers"] == 3
    for label in ("pipeline", "inline"):
        assert result[label]["marginal_per_cover_s"] is not None
        assert (tmp_path / f"{label}-3").is_dir()


def test_summary_reads_the_fused_op_targets(tmp_path, monkeypatch):
    """summary.txt's fused-CORAL lines: ratios against the targets, the route auto took, the crossover rows."""
    monkeypatch.syspath_prepend(str(REPO))
    from bench import gpu_summary

    us = 1e-6
    (tmp_path / "coral_kernels.json").write_text(json.dumps({
        "latency": {
            "batch": 256,
            "fwd+bwd": {"reference": 900 * us, "triton": 200 * us, "cpp": 210 * us, "auto": 180 * us},
            "routes": {"reference": "reference", "triton": "triton", "cpp": "cpp", "auto": "cpp"},
        },
        "crossover": [{"batch": 4096, "auto": "cpp", "seconds": {"triton": 300 * us, "cpp": 200 * us}}],
        "bandwidth": [{"impl": "triton", "pass": "forward (no grad)", "batch": 16_777_216, "pct_of_hbm_call": 31.0,
                       "pct_of_hbm_kernel": 77.4}],
    }))  # fmt: skip
    text = "\n".join(gpu_summary.coral(tmp_path))
    assert "triton: 4.50x eager (target >= 3x: MET)" in text
    assert "auto took route cpp: 5.00x eager" in text
    assert "crossover B=4,096 fwd+bwd: triton 300 us, cpp 200 us; faster cpp, auto takes cpp" in text
    assert "kernel 77 % (target >= 70 %)" in text
    assert gpu_summary.coral(tmp_path / "missing") == ["fused CORAL op: no result"]
