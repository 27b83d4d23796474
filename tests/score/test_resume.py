"""kill -9 mid-run, then --resume: every path exactly once, rows equal to an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bookcover.score import ScoreOptions, score_catalogue
from tests.score.conftest import COVERS, assert_same_rows, read_rows

REPO = Path(__file__).resolve().parents[2]
COPIES = 3  # 600 distinct paths: the kill lands long before the end

JOB = textwrap.dedent("""
    import sys
    from bookcover.score import ScoreOptions, score_catalogue
    artifact, images, out, engine = sys.argv[1:5]
    ray_init = {"num_cpus": 2, "object_store_memory": 100 * 1024 * 1024}
    score_catalogue(artifact, out, images=images, options=ScoreOptions(
        engine=engine, batch_size=16, shard_rows=16, workers=1 if engine == "ray" else None, quiet=True,
        ray_init=ray_init))
""")


@pytest.fixture(scope="module")
def big_catalogue(goodreads_sample, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("big") / "covers"
    folder.mkdir()
    for copy in range(COPIES):
        for i in range(COVERS):
            (folder / f"{copy}-{i}.jpg").symlink_to(goodreads_sample / "images" / f"{i}.jpg")
    (folder / "notes.jpg").write_text("not a cover\n")
    return folder


def descendants(pid: int) -> list[int]:
    """pid and every process below it (Ray's raylet, GCS and workers included), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children.get(p, [])
    return found


def kill_mid_run(artifact: Path, images: Path, out: Path, engine: str, timeout: float = 120) -> int:
    """Start the job in a subprocess, SIGKILL it and everything it started once a shard is out;
    returns how many shards were complete at that moment."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", JOB, str(artifact), str(images), str(out), engine], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if out.is_dir() and any(out.glob("part-*.parquet")):
                break
            time.sleep(0.005)
        assert proc.poll() is None, f"the job ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
        assert time.monotonic() < deadline, "no shard appeared in time"
    finally:
        for pid in reversed(descendants(proc.pid)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()
        proc.stderr.close()
    return len(list(out.glob("part-*.parquet")))


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_kill_then_resume_is_exactly_once(engine, tiny_artifact, big_catalogue, tmp_path, request):
    if engine == "ray":
        pytest.importorskip("ray")
    out = tmp_path / "scores"
    assert kill_mid_run(tiny_artifact, big_catalogue, out, engine) >= 1
    assert not (out / "summary.json").exists()  # killed mid-run
    partial = read_rows(out)
    assert 0 < len(partial) < COPIES * COVERS + 1
    if engine == "ray":
        request.getfixturevalue("ray_instance")
    options = ScoreOptions(engine=engine, batch_size=16, shard_rows=64, quiet=True, resume=True)
    summary = score_catalogue(tiny_artifact, out, images=big_catalogue, options=options)
    assert summary["this_run"]["resumed_from"] == len(partial)
    assert summary["this_run"]["covers"] == COPIES * COVERS + 1 - len(partial)
    assert summary["covers"] == COPIES * COVERS + 1 and summary["errors"] == 1
    resumed = read_rows(out)  # fails on any path written twice
    assert not list(out.glob(".*.tmp"))
    whole = tmp_path / "whole"
    score_catalogue(tiny_artifact, whole, images=big_catalogue,
                    options=ScoreOptions(engine="local", batch_size=64, quiet=True))
    assert_same_rows(resumed, read_rows(whole))
    again = score_catalogue(tiny_artifact, out, images=big_catalogue, options=options)  # nothing left: a no-op
    assert again["this_run"]["covers"] == 0 and read_rows(out).keys() == resumed.keys()


def test_partial_shard_is_never_read(tiny_artifact, catalogue, tmp_path):
    """A temporary shard left by a kill (here: a truncated file) is ignored and removed on resume."""
    out = tmp_path / "scores"
    score_catalogue(tiny_artifact, out, images=catalogue, options=ScoreOptions(batch_size=64, shard_rows=64, quiet=True))
    shards = sorted(out.glob("part-*.parquet"))
    victim = shards[-1]
    data = victim.read_bytes()
    victim.unlink()
    (out / f".{victim.name}.tmp").write_bytes(data[: len(data) // 2])
    lost = 202 - len(read_rows(out))
    summary = score_catalogue(tiny_artifact, out, images=catalogue,
                              options=ScoreOptions(batch_size=64, quiet=True, resume=True))
    assert summary["this_run"]["covers"] == lost > 0
    assert len(read_rows(out)) == 202 and not list(out.glob(".*.tmp"))
