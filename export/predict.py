"""Torch-free consumer of a bookcover-fast ONNX artifact (contract: export/README.md).

Needs only onnxruntime (or onnxruntime-gpu), numpy and pillow. It must never import torch or
bookcover: a production service has neither. Use it as a library::

    from predict import Artifact
    art = Artifact.load("artifact/")
    results = art.predict_files(["cover.jpg"])

or from the shell::

    python export/predict.py ARTIFACT_DIR COVER... [--batch-size 64] [--variant model.fp16.onnx]

which prints one JSON object per cover (path, level, probas, level_probs). An unreadable cover
gets a one-line error on stderr, the rest are still predicted, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

MANIFEST_FILE = "manifest.json"
MODEL_FILE = "model.onnx"
INPUT_NAME = "pixels"
OUTPUT_NAMES = ("probas", "rank", "level_probs")
SUPPORTED_FORMAT = 1
# Training resizes with PIL's bilinear filter (bookcover/data/images.py); so must we.
RESIZE_FILTER = Image.Resampling.BILINEAR


class ArtifactError(Exception):
    """The artifact is missing, incomplete, tampered with or of an unknown format."""


class CoverError(Exception):
    """A cover that cannot be decoded; the message is one line naming the file."""


# --- preprocessing: a faithful copy of bookcover/data/images.py + batches.center_crop --------


def open_rgb(path: str | os.PathLike) -> Image.Image:
    """Open a cover as RGB exactly as training does: convert grayscale, palette, CMYK, 16-bit;
    composite transparent covers on white. Anything unreadable raises a one-line CoverError."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise CoverError(f"{path}: empty file")
        with Image.open(path) as img:
            img.load()  # a full decode, so truncation is caught here
            return _to_rgb(img)
    except CoverError:
        raise
    except FileNotFoundError:
        raise CoverError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CoverError(f"{path}: is a directory, not an image") from None
    except UnidentifiedImageError:
        raise CoverError(f"{path}: not an image (unrecognised format)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise CoverError(f"{path}: corrupt or truncated image ({exc})") from None


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img.copy()
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        hi = max(float(arr.max()), 1.0)
        img = Image.fromarray((arr / hi * 255.0).round().astype(np.uint8), mode="L")
    return img.convert("RGB")


def center_offset(full: int, crop: int) -> int:
    """torchvision CenterCrop's offset, round((full - crop) / 2), as training evaluation uses."""
    return int(round((full - crop) / 2.0))


def preprocess(path: str | os.PathLike, resize: Sequence[int], crop: int) -> np.ndarray:
    """A cover file -> uint8 (crop, crop, 3): RGB, bilinear resize to (H, W) ignoring aspect,
    center crop. Pixel for pixel what training evaluation feeds the network."""
    img = open_rgb(path)
    height, width = int(resize[0]), int(resize[1])
    if img.size != (width, height):
        img = img.resize((width, height), RESIZE_FILTER)
    arr = np.asarray(img, dtype=np.uint8)
    if crop > height or crop > width:
        raise ArtifactError(f"input spec crop {crop} is larger than the resize {height}x{width}")
    top, left = center_offset(height, crop), center_offset(width, crop)
    return np.ascontiguousarray(arr[top : top + crop, left : left + crop])


# --- artifact loading ------------------------------------------------------------------------


def _sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """Check every file listed in manifest.json against its size and sha256.

    Raises ArtifactError naming the first file that is missing or differs, so a tampered or
    half-copied model is refused before onnxruntime ever parses it.
    """
    folder = Path(folder)
    manifest_path = folder / MANIFEST_FILE
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
    except FileNotFoundError:
        raise ArtifactError(f"{folder}: no {MANIFEST_FILE}; not a bookcover-fast artifact") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{manifest_path}: unreadable manifest ({exc})") from None
    if manifest.get("format") != SUPPORTED_FORMAT or manifest.get("algorithm") != "sha256":
        raise ArtifactError(f"{manifest_path}: unsupported manifest format {manifest.get('format')!r}")
    for name, entry in files.items():
        path = folder / name
        if Path(name).name != name:
            raise ArtifactError(f"{manifest_path}: file name {name!r} escapes the artifact folder")
        if not path.is_file():
            raise ArtifactError(f"{path}: listed in {MANIFEST_FILE} but missing")
        if path.stat().st_size != entry["size"]:
            raise ArtifactError(
                f"{path}: size {path.stat().st_size} differs from the manifest's {entry['size']}; refusing to load it"
            )
        if _sha256(path) != entry["sha256"]:
            raise ArtifactError(f"{path}: sha256 differs from the manifest; the file was modified, refusing to load it")
    return manifest


def default_providers() -> list[str]:
    """CUDA when this onnxruntime build offers it (onnxruntime-gpu), always CPU as fallback."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


@dataclass
class Artifact:
    """A verified artifact: an onnxruntime session plus the metadata that says how to feed it."""

    folder: Path
    session: Any
    metadata: dict[str, Any]

    @classmethod
    def load(
        cls,
        folder: str | os.PathLike,
        variant: str = MODEL_FILE,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        verify: bool = True,
    ) -> Artifact:
        """Verify hashes, then open ``variant`` (model.onnx or model.fp16.onnx)."""
        import onnxruntime as ort

        folder = Path(folder)
        if not folder.is_dir():
            raise ArtifactError(f"{folder}: no such artifact folder")
        if verify:
            manifest = verify_manifest(folder)
            if variant not in manifest["files"]:
                raise ArtifactError(f"{folder / variant}: not listed in {MANIFEST_FILE}; refusing an unverified model")
        model_path = folder / variant
        if not model_path.is_file():
            raise ArtifactError(f"{model_path}: no such model file")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        try:
            session = ort.InferenceSession(str(model_path), sess_options=opts,
                                           providers=list(providers or default_providers()))
        except Exception as exc:  # onnxruntime raises several private exception types
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise ArtifactError(f"{model_path}: onnxruntime cannot load it ({first})") from None
        raw = session.get_modelmeta().custom_metadata_map
        metadata = {}
        for key, value in raw.items():
            try:
                metadata[key] = json.loads(value)
            except ValueError:
                metadata[key] = value
        if "bookcover.input_spec" not in metadata:
            raise ArtifactError(f"{model_path}: no bookcover.input_spec metadata; not a bookcover-fast model")
        return cls(folder, session, metadata)

    @property
    def input_spec(self) -> dict[str, Any]:
        return self.metadata["bookcover.input_spec"]

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def preprocess(self, path: str | os.PathLike) -> np.ndarray:
        spec = self.input_spec
        return preprocess(path, spec["resize"], int(spec["crop"]))

    def predict_pixels(self, crops: np.ndarray, batch_size: int = 64) -> dict[str, np.ndarray]:
        """uint8 (N, crop, crop, 3) center crops -> probas, rank, level_probs, in batches."""
        crops = np.asarray(crops)
        if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[3] != 3:
            raise ValueError(f"expected uint8 (N, crop, crop, 3) pixels, got {crops.dtype} {crops.shape}")
        outs: dict[str, list[np.ndarray]] = {name: [] for name in OUTPUT_NAMES}
        for a in range(0, crops.shape[0], batch_size):
            got = self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: np.ascontiguousarray(crops[a : a + batch_size])})
            for name, value in zip(OUTPUT_NAMES, got, strict=True):
                outs[name].append(value)
        if not outs["rank"]:
            k = int(self.metadata["bookcover.levels"])
            return {"probas": np.zeros((0, k - 1), np.float32), "rank": np.zeros(0, np.int64),
                    "level_probs": np.zeros((0, k), np.float32)}
        return {name: np.concatenate(v) for name, v in outs.items()}

    def predict_files(self, paths: Sequence[str | os.PathLike], batch_size: int = 64) -> list[dict[str, Any]]:
        """One dict per path: path, level, probas, level_probs; or path and error if unreadable."""
        results: list[dict[str, Any]] = [{"path": str(p)} for p in paths]
        good: list[int] = []
        crops: list[np.ndarray] = []
        for i, p in enumerate(paths):
            try:
                crops.append(self.preprocess(p))
                good.append(i)
            except CoverError as exc:
                results[i]["error"] = str(exc)
        if good:
            pred = self.predict_pixels(np.stack(crops), batch_size)
            for j, i in enumerate(good):
                results[i].update(
                    level=int(pred["rank"][j]),
                    probas=[float(v) for v in pred["probas"][j]],
                    level_probs=[float(v) for v in pred["level_probs"][j]],
                )
        return results


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Predict cover popularity levels with a bookcover-fast ONNX artifact.")
    parser.add_argument("artifact", help="artifact folder (model.onnx, manifest.json, validation.json)")
    parser.add_argument("covers", nargs="+", help="cover image files")
    parser.add_argument("--batch-size", type=_positive, default=64)
    parser.add_argument("--variant", default=MODEL_FILE, help="model file in the artifact (model.fp16.onnx)")
    parser.add_argument("--cpu", action="store_true", help="use the CPU provider even if CUDA is available")
    args = parser.parse_args(argv)
    try:
        art = Artifact.load(args.artifact, args.variant, providers=["CPUExecutionProvider"] if args.cpu else None)
    except ArtifactError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = 0
    for r in art.predict_files(args.covers, args.batch_size):
        if "error" in r:
            failed += 1
            print(f"error: {r['error']}", file=sys.stderr)
        else:
            print(json.dumps(r))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
