"""A wrong --expect-sha256 refuses to start (exit 2, one line) and writes nothing."""

from __future__ import annotations

import json

from click.testing import CliRunner

from bookcover.cli import main


def test_wrong_sha256_exits_2(tiny_artifact, catalogue, tmp_path):
    out = tmp_path / "scores"
    res = CliRunner().invoke(main, ["score", "--artifact", str(tiny_artifact), "--images", str(catalogue), "--out", str(out),
                                    "--expect-sha256", "0" * 64, "--quiet"])
    assert res.exit_code == 2, res.output
    assert "refusing to load a model other than the pinned one" in res.output
    assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
    assert not out.exists()


def test_right_sha256_scores(tiny_artifact, goodreads_sample, tmp_path):
    sha = json.loads((tiny_artifact / "manifest.json").read_text())["files"]["model.onnx"]["sha256"]
    listing = tmp_path / "list.csv"
    listing.write_text("path\n" + "".join(f"{goodreads_sample}/images/{i}.jpg\n" for i in range(5)))
    out = tmp_path / "scores"
    res = CliRunner().invoke(main, ["score", "--artifact", str(tiny_artifact), "--manifest", str(listing), "--out",
                                    str(out), "--expect-sha256", sha.upper(), "--quiet"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("scored 5 covers") and len(res.output.strip().splitlines()) == 1
