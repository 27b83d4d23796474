"""`data cache` errors and Ctrl-C (issue 11, items 10 and 11): one line, the right exit code,
nothing left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import bookcover.data.cache as cache_module
from bookcover.cli import main
from bookcover.data.synth import synthesise

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def small_covers(tmp_path_factory) -> Path:
    return synthesise(tmp_path_factory.mktemp("cli-data") / "covers", n=20, seed=4, quiet=True)


@pytest.mark.parametrize("point_at", ["folder", "csv"])
def test_non_utf8_csv_is_one_line_either_way(tmp_path, point_at):
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    (root / "book_data.csv").write_bytes(b"book_title,book_rating_count\nLes Mis\xe9rables,12\n")
    target = root if point_at == "folder" else root / "book_data.csv"
    res = CliRunner().invoke(main, ["data", "cache", "--data", str(target), "--quiet"])
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert lines == [f"Error: {root / 'book_data.csv'}: not a UTF-8 CSV (invalid continuation byte)"]


def test_ctrl_c_discards_the_partial_cache(small_covers, tmp_path, monkeypatch):
    monkeypatch.setenv("BOOKCOVER_CACHE", str(tmp_path / "cache"))
    calls = []

    def interrupted(job):
        calls.append(job)
        raise KeyboardInterrupt

    monkeypatch.setattr(cache_module, "_decode_chunk", interrupted)
    res = CliRunner().invoke(main, ["data", "cache", "--data", str(small_covers), "--size", "16",
                                    "--out", str(tmp_path / "summary"), "--quiet"])
    assert calls and res.exit_code == 130
    assert res.stderr == "interrupted; the partial cache was discarded (nothing was written)\n"
    assert list((tmp_path / "cache").iterdir()) == [] and not (tmp_path / "summary").exists()


def test_sigint_to_the_whole_process_group_gives_one_line(goodreads_sample, tmp_path):
    """Ctrl-C in a terminal signals every process of the group: the decoding workers too. They
    must not print tracebacks; the parent prints one line, discards the cache and exits 130."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "BOOKCOVER_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "bookcover.cli", "data", "cache", "--data", str(goodreads_sample),
                             "--size", "96"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list((tmp_path / "cache").glob(".building-*/staging.npy")):
        time.sleep(0.05)
    # The workers are decoding now. Not longer: 3,000 small covers decode in about a second on a quiet
    # 2-core machine, and a finished cache exits 0 before the signal arrives.
    time.sleep(0.2)
    assert proc.poll() is None, "data cache finished before the signal: the test needs a slower decode"
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    text = err.decode()
    assert proc.returncode == 130, text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text
    last = text.replace("\r", "\n").strip().splitlines()[-1]
    assert last == "interrupted; the partial cache was discarded (nothing was written)"
    assert out == b"" and list((tmp_path / "cache").iterdir()) == []
