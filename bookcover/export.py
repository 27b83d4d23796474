"""ONNX export of a CORAL classifier, and its validation against PyTorch.

The artifact is what a production service without torch runs (see export/README.md for the
contract). Export and validation are separate functions, timm onnx_export/onnx_validate style,
so that a saved artifact can be re-validated on other data later.

Artifact folder:
  model.onnx        fp32; input ``pixels`` uint8 NHWC (B, crop, crop, 3), center-cropped;
                    outputs ``probas`` (B, K-1), ``rank`` int64 (B), ``level_probs`` (B, K)
  model.fp16.onnx   optional (--fp16): the same graph with the network in float16
  validation.json   parity figures against PyTorch on the held-out split
  manifest.json     sha256 and size of every other file, so a consumer can check what it loads
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import bookcover
from bookcover.classifier import Classifier, checkpoint_test_metrics, load_classifier, predict_pixels
from bookcover.consumer import load_consumer
from bookcover.coral.reference import coral_predict, level_probabilities
from bookcover.data.batches import center_crop, normalise
from bookcover.data.dataset import load_labelled
from bookcover.errors import BookcoverError
from bookcover.filemodes import follow_umask
from bookcover.jsonio import dumps_json
from bookcover.outputs import RECORD_FILE, check_out_dir, claim, remove_output, settle, start_record
from bookcover.resume import locate_recorded_data

INPUT_NAME = "pixels"
OUTPUT_NAMES = ("probas", "rank", "level_probs")
MODEL_FILE = "model.onnx"
FP16_FILE = "model.fp16.onnx"
MANIFEST_FILE = "manifest.json"
VALIDATION_FILE = "validation.json"
ARTIFACT_FORMAT = 1
DEFAULT_OPSET = 18
ARTIFACT_FILES = (MODEL_FILE, FP16_FILE, MANIFEST_FILE, VALIDATION_FILE)
COMMAND = "export"  # the name its artifact folders (and <out>.failed) are recorded under (bookcover.outputs)
FAILED_FLAG = "--out's .failed folder"

# Parity thresholds of the contract (issue 4): fp32 must match PyTorch to 1e-4; the fp16
# variant to 1e-2 with at least 99 % of ranks equal.
FP32_ATOL = 1e-4
FP16_ATOL = 1e-2
FP16_MIN_RANK_AGREEMENT = 0.99

LEVEL_MEANING = (
    "level k in 0..K-1 is the popularity quantile of the cover's book in its list; "
    "0 = least popular, K-1 = most popular. probas[k] = P(level > k); rank = #(probas > 0.5)."
)


class ExportError(BookcoverError):
    """Export could not produce a valid artifact (checker or parity failure, bad output folder)."""


class OnnxClassifier(nn.Module):
    """uint8 NHWC center-cropped pixels -> (probas, rank, level_probs), all inside the graph.

    Putting the normalisation in the graph means the consumer ships only bytes, and cannot
    get mean/std or the channel order wrong. It reuses the training pipeline's own functions
    (normalise, coral_predict, level_probabilities), so the graph is the reference by
    construction. ``half`` runs a float16 copy of the network; the CORAL head stays float32.
    """

    def __init__(self, model: nn.Module, half: bool = False):
        super().__init__()
        self.model = copy.deepcopy(model).half() if half else model
        self.half = half

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = normalise(pixels)
        if self.half:
            x = x.half()
        logit = self.model(x).float()
        probas, rank = coral_predict(logit, self.model.coral_bias.float())
        return probas, rank, level_probabilities(probas)


def sha256_file(path: str | Path) -> str:
    """The consumer's sha256 (export/predict.py): the manifest is written with the function that checks it."""
    return load_consumer().sha256_file(path)


def build_metadata(clf: Classifier, checkpoint: Path, opset: int, precision: str,
                   test_metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``bookcover.*`` metadata_props (values are JSON); documented in export/README.md.

    test_metrics is the checkpoint's own (checkpoint_test_metrics), never a report beside it.
    """
    k = clf.num_levels
    return {
        "bookcover.format": ARTIFACT_FORMAT,
        "bookcover.version": bookcover.__version__,
        "bookcover.levels": k,
        "bookcover.level_meaning": LEVEL_MEANING,
        "bookcover.input_spec": clf.checkpoint["preprocess"],
        "bookcover.outputs": {
            "probas": f"float32 (B, {k - 1}): P(level > k)",
            "rank": "int64 (B): predicted level, sum_k 1[probas_k > 0.5]",
            "level_probs": f"float32 (B, {k}): P(level = k)",
        },
        "bookcover.precision": precision,
        "bookcover.data_summary": clf.checkpoint.get("data_summary"),
        "bookcover.test_metrics": test_metrics,
        "bookcover.checkpoint_sha256": sha256_file(checkpoint),
        "bookcover.checkpoint_epoch": clf.checkpoint.get("epoch"),
        "bookcover.opset": opset,
        "bookcover.config": clf.checkpoint.get("config"),
    }


def export_onnx(
    model: nn.Module,
    crop: int,
    path: str | Path,
    metadata: dict[str, Any] | None = None,
    half: bool = False,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Export with the dynamo exporter to one self-contained file, batch axis dynamic, then
    attach the metadata and run onnx.checker with full_check (shape inference included)."""
    import onnx

    path = Path(path)
    if next(model.parameters()).device.type != "cpu":  # the graph is traced on the CPU, wherever parity runs
        model = copy.deepcopy(model).cpu()
    wrapper = OnnxClassifier(model.eval(), half=half).eval()
    example = torch.zeros((2, crop, crop, 3), dtype=torch.uint8)
    batch = torch.export.Dim("batch", min=1, max=65536)
    program = torch.onnx.export(
        wrapper,
        (example,),
        dynamo=True,
        input_names=[INPUT_NAME],
        output_names=list(OUTPUT_NAMES),
        dynamic_shapes={"pixels": {0: batch}},
        opset_version=opset,
        optimize=True,
        verbose=False,
    )
    proto = program.model_proto
    props = {key: dumps_json(value) for key, value in (metadata or {}).items()}
    onnx.helper.set_model_props(proto, props)
    proto.producer_name = "bookcover-fast"
    proto.producer_version = bookcover.__version__
    onnx.save_model(proto, str(path), save_as_external_data=False)
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "ValidationError"
        raise ExportError(f"{path}: onnx.checker rejected the exported graph ({first[:200]})") from None
    return path


def ort_session(path: str | Path, threads: int | None = None):
    """A CPU onnxruntime session with full graph optimisation (the validation reference)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def run_onnx(session, crops: np.ndarray, batch_size: int = 64) -> dict[str, np.ndarray]:
    """Run uint8 (N, crop, crop, 3) crops through a session in batches."""
    outs: dict[str, list[np.ndarray]] = {name: [] for name in OUTPUT_NAMES}
    for a in range(0, crops.shape[0], batch_size):
        got = session.run(list(OUTPUT_NAMES), {INPUT_NAME: np.ascontiguousarray(crops[a : a + batch_size])})
        for name, value in zip(OUTPUT_NAMES, got, strict=True):
            outs[name].append(value)
    return {name: np.concatenate(v) for name, v in outs.items()}


def parity(
    reference: dict[str, np.ndarray], got: dict[str, np.ndarray], atol: float, min_rank_agreement: float | None
) -> dict[str, Any]:
    """Compare ONNX outputs with PyTorch's.

    Without min_rank_agreement (fp32), every rank must match except where a torch probability
    lies within atol of 0.5, where a last-bit difference may legitimately flip the threshold.
    """
    probas_diff = float(np.abs(got["probas"].astype(np.float64) - reference["probas"]).max(initial=0.0))
    levels_diff = float(np.abs(got["level_probs"].astype(np.float64) - reference["level_probs"]).max(initial=0.0))
    same = got["rank"] == reference["rank"]
    near_half = (np.abs(reference["probas"] - 0.5) <= atol).any(axis=1)
    unexplained = int((~same & ~near_half).sum())
    n = int(same.size)
    agreement = float(same.mean()) if n else 1.0
    ranks_ok = agreement >= min_rank_agreement if min_rank_agreement is not None else unexplained == 0
    return {
        "n": n,
        "atol": atol,
        "probas_max_abs_diff": probas_diff,
        "level_probs_max_abs_diff": levels_diff,
        "rank_agreement": agreement,
        "rank_mismatches": int((~same).sum()),
        "rank_mismatches_near_half": int((~same & near_half).sum()),
        "rank_mismatches_unexplained": unexplained,
        "min_rank_agreement": min_rank_agreement,
        "rank_dtype": str(got["rank"].dtype),
        "passed": bool(probas_diff <= atol and levels_diff <= atol and ranks_ok and got["rank"].dtype == np.int64),
    }


@contextlib.contextmanager
def full_fp32():
    """CUDA matmuls and convolutions in true fp32 (TF32 off) for a parity check at 1e-5, restored after."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def validate_onnx(
    path: str | Path,
    model: nn.Module,
    images: np.ndarray,
    crop: int,
    atol: float = FP32_ATOL,
    min_rank_agreement: float | None = None,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Parity of an exported file against the PyTorch model on uint8 (N, H, W, 3) covers.

    PyTorch sees the covers as training evaluation does (predict_pixels: center crop inside), on
    the model's device in full fp32 (no TF32 on CUDA); ONNX gets the same center crops as uint8,
    as a consumer would send them, on onnxruntime's CPU provider (the reference consumers pin).
    """
    with full_fp32():
        reference = predict_pixels(model, images, crop, batch_size)
    crops = center_crop(torch.from_numpy(images), crop).numpy()
    t0 = time.perf_counter()
    got = run_onnx(ort_session(path), crops, batch_size)
    report = parity({k: v.astype(np.float64) if k != "rank" else v for k, v in reference.items()}, got, atol,
                    min_rank_agreement)
    report["onnxruntime_seconds"] = time.perf_counter() - t0
    return report


def write_manifest(folder: str | Path) -> dict[str, Any]:
    """manifest.json: sha256 and size of every file in the folder except itself."""
    folder = Path(folder)
    files = {
        p.name: {"sha256": sha256_file(p), "size": p.stat().st_size}
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name not in (MANIFEST_FILE, RECORD_FILE)
    }
    manifest = {"format": ARTIFACT_FORMAT, "algorithm": "sha256", "files": files}
    (folder / MANIFEST_FILE).write_text(dumps_json(manifest, indent=2) + "\n")
    return manifest


@dataclass
class HeldOut:
    """The covers validation runs on and where they came from."""

    images: np.ndarray
    labels: np.ndarray
    source: dict[str, Any]


def held_out_covers(clf: Classifier, data: str | Path | None = None, max_covers: int | None = None,
                    split: str = "test", quiet: bool = True) -> HeldOut:
    """The checkpoint's own held-out split, rebuilt from its config (optionally other data)."""
    config = clf.config if data is None else replace(clf.config, data=str(data))
    covers = load_labelled(config, quiet=quiet)
    pos = covers.select(split)
    if max_covers is not None and pos.size > max_covers:
        pos = pos[np.linspace(0, pos.size - 1, max_covers).round().astype(int)]
    if pos.size == 0:
        raise ExportError(f"the {split} split of {config.data or 'the synthetic default'} is empty; pass --data")
    source = {"data": config.data or "synthetic default", "split": split, "covers": int(pos.size),
              "split_covers": int(covers.select(split).size), "seed": config.seed}
    return HeldOut(covers.images(pos), covers.labels[pos], source)


def export_artifact(
    checkpoint: str | Path,
    out: str | Path,
    fp16: bool = False,
    data: str | Path | None = None,
    max_covers: int | None = None,
    opset: int = DEFAULT_OPSET,
    quiet: bool = True,
    overwrite: bool = False,
    device: str = "cpu",
) -> dict[str, Any]:
    """Export, check, validate and hash an artifact; the folder appears only if all passed.

    ``device`` is where the PyTorch side of the parity check runs (the graph is always traced
    on the CPU).

    Work happens in a temp folder beside ``out``. On a parity failure it is kept as
    ``<out>.failed`` (validation.json says why) and ExportError is raised. ``out`` follows the
    --out policy (bookcover.outputs); an earlier ``<out>.failed`` is replaced only where its
    record says export wrote it, unchanged (never a folder of the user's).
    """
    checkpoint, out = Path(checkpoint), Path(out)
    failed = out.with_name(out.name + ".failed")
    check_out_dir(out, COMMAND, overwrite=overwrite)
    check_out_dir(failed, COMMAND, FAILED_FLAG, overwrite=True)
    clf = load_classifier(checkpoint, device=device)
    if data is None:
        data = locate_recorded_data(clf.config.data, checkpoint)
    held = held_out_covers(clf, data, max_covers, quiet=quiet)
    test_metrics = checkpoint_test_metrics(clf)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    follow_umask(work, directory=True)
    start_record(work, COMMAND)  # moves with the folder, into out or <out>.failed
    claim(work, *ARTIFACT_FILES)
    try:
        validation: dict[str, Any] = {"checkpoint": str(checkpoint), "held_out": held.source,
                                      "torch_device": str(clf.device), "variants": {}}
        variants = [(MODEL_FILE, False, FP32_ATOL, None)]
        if fp16:
            variants.append((FP16_FILE, True, FP16_ATOL, FP16_MIN_RANK_AGREEMENT))
        for name, half, atol, min_agree in variants:
            meta = build_metadata(clf, checkpoint, opset, "fp16" if half else "fp32", test_metrics)
            t0 = time.perf_counter()
            export_onnx(clf.model, clf.config.crop, work / name, meta, half=half, opset=opset)
            report = validate_onnx(work / name, clf.model, held.images, clf.config.crop, atol, min_agree)
            report["export_seconds"] = time.perf_counter() - t0 - report["onnxruntime_seconds"]
            report["checker"] = "onnx.checker.check_model(full_check=True) passed"
            report["sha256"] = sha256_file(work / name)  # what a consumer pins (--expect-sha256)
            validation["variants"][name] = report
        torch_rank = predict_pixels(clf.model, held.images, clf.config.crop)["rank"]
        validation["torch_accuracy_on_held_out"] = float((torch_rank == held.labels).mean())
        validation["passed"] = all(v["passed"] for v in validation["variants"].values())
        (work / VALIDATION_FILE).write_text(dumps_json(validation, indent=2) + "\n")
        if not validation["passed"]:
            settle(work, *ARTIFACT_FILES)
            remove_output(failed, COMMAND, FAILED_FLAG)
            os.replace(work, failed)
            bad = [f"{n}: probas max abs diff {v['probas_max_abs_diff']:.2e} (atol {v['atol']:g}), "
                   f"rank agreement {v['rank_agreement']:.4f}" for n, v in validation["variants"].items()
                   if not v["passed"]]
            raise ExportError(f"parity with PyTorch failed ({'; '.join(bad)}); details in {failed / VALIDATION_FILE}")
        write_manifest(work)
        settle(work, *ARTIFACT_FILES)
        if out.exists():
            remove_output(out, COMMAND)  # a previous artifact, checked by its record
        os.replace(work, out)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return validation
