"""export follows the one --out policy (issues 11, 18): --overwrite replaces an earlier artifact, as
its record lists it, and nothing else, in one step at the end."""

import json
import shutil

from click.testing import CliRunner

from bookcover.cli import main
from bookcover.export import MODEL_FILE
from bookcover.outputs import RECORD_FILE


def test_overwrite_replaces_an_earlier_artifact_only(exported, tiny_run, tmp_path, monkeypatch):
    import bookcover.export as ex

    folder, _ = exported

    def fake_export(model, crop, path, metadata=None, half=False, opset=18):
        shutil.copyfile(folder / MODEL_FILE, path)  # the real graph, without a 20 s re-export
        return path

    monkeypatch.setattr(ex, "export_onnx", fake_export)
    out = tmp_path / "art"
    shutil.copytree(folder, out)
    assert (out / "model.fp16.onnx").is_file()  # the earlier artifact's fp16 variant, recorded
    args = ["export", "--checkpoint", str(tiny_run / "best.pt"), "--out", str(out), "--max-covers", "4"]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2 and "already holds the output of `export`" in refused.output
    done = CliRunner().invoke(main, [*args, "--overwrite"])
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in out.iterdir()) == [RECORD_FILE, "manifest.json", "model.onnx", "validation.json"]
    assert json.loads((out / "validation.json").read_text())["held_out"]["covers"] == 4
    assert not list(tmp_path.glob(".art.*"))  # the work folder was renamed into place
