"""A model other than the pinned one never serves: one line, exit 2."""

from __future__ import annotations

import subprocess

from tests.serve.harness import REPO, command


def run(args: list[str]) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_wrong_expect_sha256_refuses_to_start(served):
    res = run(command(served, "--expect-sha256", "0" * 64))
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "refusing" in lines[0] and "Traceback" not in res.stderr


def test_malformed_expect_sha256_and_missing_artifact(served, tmp_path):
    for args in (command(served, "--expect-sha256", "abc"), command(tmp_path / "none")):
        res = run(args)
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
