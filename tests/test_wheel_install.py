"""A wheel install, not an editable one, runs the artifact commands (issue 18, item 4).

The wheel is built from this checkout (`pip wheel --no-deps --no-build-isolation`, the same
command CI uses) and installed into a folder with `pip install --no-deps --target`, never with
-e. The commands then run from that folder, with the working directory outside the checkout so
that the checkout cannot be imported by accident: predict, export, and explain --onnx, which
loads the artifact through the torch-free consumer shipped inside the wheel.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """(site folder with the installed wheel, environment whose PYTHONPATH is only that folder)."""
    work = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.setdefault("BOOKCOVER_NO_CUDA", "1")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(work / "dist"),
          str(REPO)], cwd=REPO, env=env, timeout=900)
    wheels = sorted((work / "dist").glob("bookcover_fast-*.whl"))
    assert len(wheels) == 1, wheels
    site = work / "site"
    _run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheels[0])], cwd=work,
         env=env)
    env["PYTHONPATH"] = str(site)
    return site, env


def test_the_wheel_ships_the_consumer_as_one_file(installed):
    site, _ = installed
    shipped = site / "bookcover" / "_export" / "predict.py"
    assert shipped.read_bytes() == (REPO / "export" / "predict.py").read_bytes()
    assert not (site / "export").exists()  # no top-level package named "export" in site-packages


def test_artifact_commands_run_from_the_installed_copy(installed, tiny_run, synth_covers, tmp_path):
    site, env = installed
    cwd = tmp_path / "elsewhere"  # outside the checkout: `import bookcover` cannot find it from here
    cwd.mkdir()
    py = [sys.executable, "-m", "bookcover.cli"]
    where = _run([sys.executable, "-c", "import bookcover, bookcover.consumer as c; print(bookcover.__file__); "
                  "print(c.CONSUMER_FILE)"], cwd=cwd, env=env).stdout.split()
    assert Path(where[0]).resolve().is_relative_to(site.resolve()), where
    assert Path(where[1]).resolve() == (site / "bookcover" / "_export" / "predict.py").resolve(), where

    best, cover = str(tiny_run / "best.pt"), str(synth_covers / "images" / "0.jpg")
    predicted = _run([*py, "predict", "--checkpoint", best, cover], cwd=cwd, env=env)
    assert "0.jpg" in predicted.stdout
    _run([*py, "export", "--checkpoint", best, "--out", str(tmp_path / "artifact"), "--quiet"], cwd=cwd, env=env)
    assert (tmp_path / "artifact" / "model.onnx").is_file()
    _run([*py, "explain", "--onnx", str(tmp_path / "artifact"), cover, "--samples", "20", "--out",
          str(tmp_path / "explained"), "--quiet"], cwd=cwd, env=env)
    assert (tmp_path / "explained" / "report.md").is_file()
