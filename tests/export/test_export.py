"""bookcover/export.py: the exported graph, its metadata, validation, manifest and failure paths."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from bookcover import __version__
from bookcover.checkpoint import CLASSIFIER_KIND, load_checkpoint
from bookcover.cli import main
from bookcover.export import (
    FP16_FILE,
    MODEL_FILE,
    ExportError,
    export_artifact,
    parity,
    sha256_file,
)
from bookcover.outputs import RECORD_FILE, OutPathError
from tests.user_files import fingerprint, make_user_folder

REQUIRED_KEYS = {
    "bookcover.format",
    "bookcover.version",
    "bookcover.levels",
    "bookcover.level_meaning",
    "bookcover.input_spec",
    "bookcover.outputs",
    "bookcover.precision",
    "bookcover.data_summary",
    "bookcover.test_metrics",
    "bookcover.checkpoint_sha256",
    "bookcover.opset",
}


def test_graph_passes_full_checker_and_is_self_contained(exported):
    folder, _ = exported
    for name in (MODEL_FILE, FP16_FILE):
        onnx.checker.check_model(str(folder / name), full_check=True)
        proto = onnx.load(str(folder / name), load_external_data=False)
        external = [t.name for t in proto.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
        assert external == []
    assert sorted(p.name for p in folder.iterdir()) == [RECORD_FILE, "manifest.json", FP16_FILE, MODEL_FILE,
                                                         "validation.json"]
    assert RECORD_FILE not in json.loads((folder / "manifest.json").read_text())["files"]


def test_graph_signature(exported, tiny_run):
    folder, _ = exported
    crop = json.loads((tiny_run / "config.json").read_text())["config"]["crop"]
    proto = onnx.load(str(folder / MODEL_FILE))
    (inp,) = proto.graph.input
    assert inp.name == "pixels"
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param and not dims[0].HasField("dim_value")  # dynamic batch axis
    assert [d.dim_value for d in dims[1:]] == [crop, crop, 3]
    outs = {o.name: o.type.tensor_type for o in proto.graph.output}
    assert list(outs) == ["probas", "rank", "level_probs"]
    assert outs["probas"].elem_type == onnx.TensorProto.FLOAT
    assert outs["level_probs"].elem_type == onnx.TensorProto.FLOAT
    assert outs["rank"].elem_type == onnx.TensorProto.INT64
    assert [d.dim_value for d in outs["probas"].shape.dim[1:]] == [4]
    assert [d.dim_value for d in outs["level_probs"].shape.dim[1:]] == [5]


def test_metadata_keys_hold_json(exported, tiny_run):
    folder, _ = exported
    proto = onnx.load(str(folder / MODEL_FILE))
    meta = {p.key: json.loads(p.value) for p in proto.metadata_props}
    assert REQUIRED_KEYS <= set(meta)
    ckpt = load_checkpoint(tiny_run / "best.pt", CLASSIFIER_KIND)
    assert meta["bookcover.input_spec"] == ckpt["preprocess"]
    for key in ("resize", "crop", "dtype", "layout", "mean", "std"):
        assert key in meta["bookcover.input_spec"]
    assert meta["bookcover.levels"] == 5
    assert meta["bookcover.version"] == __version__
    assert meta["bookcover.checkpoint_sha256"] == sha256_file(tiny_run / "best.pt")
    opsets = {o.domain: o.version for o in proto.opset_import}
    assert meta["bookcover.opset"] == opsets[""]
    results = json.loads((tiny_run / "results.json").read_text())["splits"]["test"]
    assert meta["bookcover.test_metrics"]["model"] == results["model"]
    assert meta["bookcover.test_metrics"]["baselines"]["middle"] == results["baselines"]["middle"]
    assert meta["bookcover.data_summary"]["levels"] == 5
    assert meta["bookcover.precision"] == "fp32"
    fp16 = {p.key: json.loads(p.value) for p in onnx.load(str(folder / FP16_FILE)).metadata_props}
    assert fp16["bookcover.precision"] == "fp16"


def test_validation_report(exported, tiny_run):
    folder, validation = exported
    assert validation["passed"] is True
    test_covers = json.loads((tiny_run / "config.json").read_text())["data"]["split"]["test"]
    fp32, fp16 = validation["variants"][MODEL_FILE], validation["variants"][FP16_FILE]
    assert fp32["n"] == test_covers == validation["held_out"]["covers"]
    assert fp32["probas_max_abs_diff"] <= 1e-4 and fp32["rank_mismatches_unexplained"] == 0
    assert fp16["probas_max_abs_diff"] <= 1e-2 and fp16["rank_agreement"] >= 0.99


def test_manifest_lists_every_file_with_its_hash(exported):
    folder, _ = exported
    manifest = json.loads((folder / "manifest.json").read_text())
    assert set(manifest["files"]) == {MODEL_FILE, FP16_FILE, "validation.json"}
    for name, entry in manifest["files"].items():
        assert entry == {"sha256": sha256_file(folder / name), "size": (folder / name).stat().st_size}


def _outputs(probas: np.ndarray) -> dict[str, np.ndarray]:
    return {"probas": probas, "rank": (probas > 0.5).sum(1).astype(np.int64), "level_probs": np.zeros((len(probas), 3))}


def test_parity_rules():
    ref = _outputs(np.array([[0.9, 0.2], [0.50004, 0.1], [0.7, 0.3]]))
    same = parity(ref, _outputs(ref["probas"].copy()), 1e-4, None)
    assert same["passed"] and same["probas_max_abs_diff"] == 0
    # A flip where torch sits within atol of 0.5 is forgiven...
    near = ref["probas"].copy()
    near[1, 0] = 0.49999
    got = _outputs(near)
    report = parity(ref, got, 1e-4, None)
    assert report["passed"] and report["rank_mismatches_near_half"] == 1
    # ...one away from 0.5 is not, and neither is a drift beyond atol.
    far = _outputs(ref["probas"].copy())
    far["rank"][0] = 0
    assert not parity(ref, far, 1e-4, None)["passed"]
    assert not parity(ref, _outputs(ref["probas"] + 2e-4), 1e-4, None)["passed"]
    # fp16 rule: agreement threshold instead.
    assert parity(ref, far, 1e-2, 0.6)["passed"] and not parity(ref, far, 1e-2, 0.99)["passed"]
    wrong_dtype = _outputs(ref["probas"].copy())
    wrong_dtype["rank"] = wrong_dtype["rank"].astype(np.int32)
    assert not parity(ref, wrong_dtype, 1e-4, None)["passed"]


def test_parity_failure_fails_loudly_and_publishes_nothing(exported, tiny_run, tmp_path, monkeypatch,
                                                           goodreads_sample):
    import bookcover.export as ex

    folder, _ = exported

    def fake_export(model, crop, path, metadata=None, half=False, opset=18):
        shutil.copyfile(folder / MODEL_FILE, path)  # a real graph, no 20 s re-export
        return path

    def failing_validate(*args, **kwargs):
        report = ex.parity(_outputs(np.array([[0.9, 0.2]])), _outputs(np.array([[0.2, 0.2]])), 1e-4, None)
        report["onnxruntime_seconds"] = 0.0
        return report

    monkeypatch.setattr(ex, "export_onnx", fake_export)
    monkeypatch.setattr(ex, "validate_onnx", failing_validate)
    out = tmp_path / "art"
    with pytest.raises(ExportError, match="parity with PyTorch failed") as info:
        export_artifact(tiny_run / "best.pt", out)
    assert "\n" not in str(info.value)
    assert not out.exists()
    kept = json.loads((tmp_path / "art.failed" / "validation.json").read_text())
    assert kept["passed"] is False
    assert not (tmp_path / "art.failed" / "manifest.json").exists()
    with pytest.raises(ExportError, match="parity with PyTorch failed"):  # replaces its own recorded .failed
        export_artifact(tiny_run / "best.pt", out)
    # <out>.failed that is not export's own (issue 18): refused before any work, left as it was.
    shutil.rmtree(tmp_path / "art.failed")
    mine = make_user_folder(tmp_path / "art.failed", goodreads_sample)
    before = fingerprint(mine)
    with pytest.raises(OutPathError, match="--out's .failed folder .*no bookcover-fast command recorded"):
        export_artifact(tiny_run / "best.pt", out)
    assert fingerprint(mine) == before and not out.exists()


def test_cli_refuses_non_empty_out_in_one_line(tiny_run, tmp_path):
    out = tmp_path / "art"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    res = CliRunner().invoke(main, ["export", "--checkpoint", str(tiny_run / "best.pt"), "--out", str(out)])
    assert res.exit_code != 0
    assert "no bookcover-fast command recorded" in res.output and "Traceback" not in res.output
    assert (out / "keep.txt").read_text() == "mine"


def test_cli_wrong_checkpoint_kind(tmp_path):
    import torch

    bad = tmp_path / "gan.pt"
    torch.save({"kind": "bookcover-fast/dcgan"}, bad)
    res = CliRunner().invoke(main, ["export", "--checkpoint", str(bad), "--out", str(tmp_path / "a")])
    assert res.exit_code != 0 and "expected 'bookcover-fast/coral-classifier'" in res.output
    assert "Traceback" not in res.output and isinstance(res.exception, SystemExit)
