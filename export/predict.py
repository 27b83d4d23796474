"""Torch-free consumer of a bookcover-fast ONNX artifact (contract: export/README.md).

Needs only onnxruntime (or onnxruntime-gpu), numpy and pillow. It must never import torch or
bookcover: a production service has neither. bookcover-fast itself loads artifacts through this
file (bookcover/consumer.py), so every path that loads an artifact verifies it the same way.
Use it as a library::

    from predict import Artifact
    art = Artifact.load("artifact/", expect_sha256="<the sha256 export printed>")
    results = art.predict_files(["cover.jpg"])
    for record in art.iter_predictions(paths):   # streamed, batch by batch
        ...

or from the shell::

    python export/predict.py ARTIFACT_DIR [COVER...] [--images DIR] [--expect-sha256 HEX]
                             [--batch-size 64] [--variant model.fp16.onnx] [--cpu] [--quiet]

which prints one JSON object per cover as each batch finishes: path, level, expected_level,
probas, level_probs; or path and error for a cover that cannot be read (also one line on
stderr). Exit codes: 0 all predicted; 1 some covers failed, the rest were predicted; 2 bad usage
or an artifact that fails verification; 130 interrupted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
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
# As bookcover/data/images.py: the most pixels one cover may decode to (after JPEG draft
# scaling), and how much larger than the resize target a JPEG stays when decoded at 1/2..1/8.
MAX_COVER_MEGAPIXELS = 40.0
DRAFT_MARGIN = 2
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")

# Pillow warns above its own decompression-bomb threshold; our lower limit is checked first.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class ArtifactError(Exception):
    """The artifact is missing, incomplete, tampered with or of an unknown format."""


class CoverError(Exception):
    """A cover that cannot be decoded; the message is one line naming the file."""


# --- preprocessing: training's rules (bookcover/data/images.py); bookcover itself uses this
# file's center_offset, decode_ahead and sha256_file, so those exist once ---------------------


def open_rgb(path: str | os.PathLike, size: Sequence[int] | None = None) -> Image.Image:
    """Open a cover as RGB exactly as training does: convert grayscale, palette, CMYK, 16-bit;
    composite transparent covers on white; decode a large JPEG at a reduced scale when ``size``
    (height, width) is given; refuse more than MAX_COVER_MEGAPIXELS from the header. Anything
    unreadable raises a one-line CoverError."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise CoverError(f"{path}: empty file")
        with Image.open(path) as img:
            if size is not None and img.format == "JPEG":
                img.draft(None, (DRAFT_MARGIN * int(size[1]), DRAFT_MARGIN * int(size[0])))
            megapixels = img.size[0] * img.size[1] / 1e6
            if megapixels > MAX_COVER_MEGAPIXELS:
                raise CoverError(
                    f"{path}: image too large to decode ({img.size[0]} x {img.size[1]} = {round(megapixels, 1):g} "
                    f"megapixels; the limit is {MAX_COVER_MEGAPIXELS:g}): scale it down first"
                )
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
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = f" ({int(found.group(1)) / 1e6:.0f} megapixels)" if found else ""
        raise CoverError(f"{path}: image too large to decode{pixels}: Pillow refuses it as a possible "
                         f"decompression bomb; the limit for covers is {MAX_COVER_MEGAPIXELS:g} megapixels") from None
    except (OSError, SyntaxError, ValueError) as exc:
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
    height, width = int(resize[0]), int(resize[1])
    img = open_rgb(path, (height, width))
    if img.size != (width, height):
        img = img.resize((width, height), RESIZE_FILTER)
    arr = np.asarray(img, dtype=np.uint8)
    if crop > height or crop > width:
        raise ArtifactError(f"input spec crop {crop} is larger than the resize {height}x{width}")
    top, left = center_offset(height, crop), center_offset(width, crop)
    return np.ascontiguousarray(arr[top : top + crop, left : left + crop])


def find_images(folder: str | os.PathLike) -> list[Path]:
    """Image files under a folder, recursively, in natural order (2.jpg before 10.jpg)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    files = [p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    return sorted(files, key=lambda p: tuple((0, int(t), "") if t.isdigit() else (1, 0, t)
                                             for t in re.split(r"(\d+)", str(p))))


def decode_ahead(
    load: Callable[[Any], np.ndarray], paths: Sequence[Any], batch_size: int, workers: int | None = None,
    ahead: int = 2, catch: type[Exception] | tuple[type[Exception], ...] = CoverError,
) -> Iterator[tuple[list[Any], list[np.ndarray | Exception]]]:
    """Yield (paths, decoded) batch by batch, in order; a cover that fails comes as its error.

    Covers decode in a thread pool (Pillow releases the GIL while decoding and resizing), up to
    ``ahead`` batches before the one the model is running, so the model does not wait on PIL.
    Memory stays bounded by ``ahead + 1`` batches whatever the number of paths. ``catch``: the
    error type(s) ``load`` raises for an unreadable cover (bookcover passes its own CoverError).
    """
    def decode(path: Any) -> np.ndarray | Exception:
        try:
            return load(path)
        except catch as exc:
            return exc

    pool = ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 1))
    try:
        pending: deque = deque()
        for a in range(0, len(paths), batch_size):
            batch = list(paths[a : a + batch_size])
            pending.append((batch, [pool.submit(decode, p) for p in batch]))
            if len(pending) > ahead:
                batch, futures = pending.popleft()
                yield batch, [f.result() for f in futures]
        while pending:
            batch, futures = pending.popleft()
            yield batch, [f.result() for f in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def prediction_records(paths: Sequence[Any], pred: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """One JSON-ready record per cover. ``level`` is CORAL's rank, the number of probas > 0.5; it
    can differ from argmax(level_probs). ``expected_level`` is sum_k P(level > k)."""
    return [
        {
            "path": str(p),
            "level": int(pred["rank"][j]),
            "expected_level": float(np.sum(pred["probas"][j], dtype=np.float64)),
            "probas": [float(v) for v in pred["probas"][j]],
            "level_probs": [float(v) for v in pred["level_probs"][j]],
        }
        for j, p in enumerate(paths)
    ]


def error_record(path: Any, exc: Exception) -> dict[str, str]:
    """{"path", "error"} for a cover that could not be read; the reason without the path prefix."""
    text = str(exc)
    prefix = f"{path}: "
    return {"path": str(path), "error": text[len(prefix):] if text.startswith(prefix) else text}


# --- artifact loading ------------------------------------------------------------------------


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The file's sha256, hex (what manifest.json records and --expect-sha256 pins)."""
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
        if sha256_file(path) != entry["sha256"]:
            raise ArtifactError(f"{path}: sha256 differs from the manifest; the file was modified, refusing to load it")
    return manifest


def check_sha256_text(text: str) -> str:
    """A sha256 given by a user, lower-cased; ArtifactError unless it is 64 hex digits."""
    value = text.strip().lower()
    if not SHA256_HEX.fullmatch(value):
        raise ArtifactError(f"--expect-sha256 {text!r} is not a sha256 (64 hex digits)")
    return value


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
        expect_sha256: str | None = None,
    ) -> Artifact:
        """Verify hashes, then open ``variant`` (model.onnx or model.fp16.onnx).

        The manifest catches corruption and half-copied files, not tampering: whoever can edit
        the model can rewrite manifest.json too. ``expect_sha256`` pins the model file to the
        sha256 that ``bookcover-fast export`` printed, received through a channel you trust.
        """
        import onnxruntime as ort

        folder = Path(folder)
        if not folder.is_dir():
            raise ArtifactError(f"{folder}: no such artifact folder")
        expected = check_sha256_text(expect_sha256) if expect_sha256 is not None else None
        model_path = folder / variant
        actual = None
        if verify:
            manifest = verify_manifest(folder)
            if variant not in manifest["files"]:
                raise ArtifactError(f"{model_path}: not listed in {MANIFEST_FILE}; refusing an unverified model")
            actual = manifest["files"][variant]["sha256"]
        if not model_path.is_file():
            raise ArtifactError(f"{model_path}: no such model file")
        if expected is not None:
            actual = actual or sha256_file(model_path)
            if actual != expected:
                raise ArtifactError(
                    f"{model_path}: sha256 {actual[:16]}... is not the expected {expected[:16]}...; "
                    "refusing to load a model other than the pinned one"
                )
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

    def iter_predictions(
        self, paths: Sequence[str | os.PathLike], batch_size: int = 64, workers: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield one record per path, in order, as each batch finishes: path, level,
        expected_level, probas, level_probs; or path and error if the cover is unreadable."""
        for batch, decoded in decode_ahead(self.preprocess, paths, batch_size, workers):
            good = [j for j, d in enumerate(decoded) if not isinstance(d, CoverError)]
            records: dict[int, dict[str, Any]] = {}
            if good:
                pred = self.predict_pixels(np.stack([decoded[j] for j in good]), batch_size)
                records = dict(zip(good, prediction_records([batch[j] for j in good], pred), strict=True))
            for j, p in enumerate(batch):
                yield records[j] if j in records else error_record(p, decoded[j])

    def predict_files(self, paths: Sequence[str | os.PathLike], batch_size: int = 64) -> list[dict[str, Any]]:
        """One dict per path: path, level, expected_level, probas, level_probs; or path and error."""
        return list(self.iter_predictions(paths, batch_size))


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


class Progress:
    """'predicted N/M covers' on one stderr line, redrawn at most 10 times a second, only on a
    terminal (tqdm is not a dependency of the production side)."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.done, self.last = total, 0, 0.0
        self.enabled = enabled and sys.stderr.isatty()

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and (now - self.last > 0.1 or self.done == self.total):
            self.last = now
            sys.stderr.write(f"\rpredicted {self.done}/{self.total} covers")
            sys.stderr.flush()

    def write(self, line: str) -> None:
        """A line on stderr that does not mangle the progress line."""
        sys.stderr.write(("\r\033[K" if self.enabled else "") + line + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.done:
            sys.stderr.write("\n")
            sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Predict cover popularity levels with a bookcover-fast ONNX artifact. Prints one JSON "
        "object per cover, batch by batch: path, level (CORAL's rank: the number of probas > 0.5, which can "
        "differ from argmax(level_probs)), expected_level (sum of probas), probas = P(level > k), "
        "level_probs = P(level = k); or path and error for an unreadable cover.",
        epilog="Exit codes: 0 all covers predicted; 1 some covers failed, the rest were predicted; 2 bad usage "
        "or an artifact that fails verification; 130 interrupted. Covers over "
        f"{MAX_COVER_MEGAPIXELS:g} megapixels (after JPEG draft decoding) are refused.",
    )
    parser.add_argument("artifact", help="artifact folder (model.onnx, manifest.json, validation.json)")
    parser.add_argument("covers", nargs="*", help="cover image files")
    parser.add_argument("--images", help="also predict every image under this folder (recursive)")
    parser.add_argument("--batch-size", type=_positive, default=64)
    parser.add_argument("--variant", default=MODEL_FILE, help="model file in the artifact (model.fp16.onnx)")
    parser.add_argument("--expect-sha256", metavar="HEX",
                        help="refuse the model unless its sha256 is this (the one bookcover-fast export printed)")
    parser.add_argument("--cpu", action="store_true", help="use the CPU provider even if CUDA is available")
    parser.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    args = parser.parse_args(argv)
    paths: list[Any] = list(args.covers)
    if args.images:
        try:
            paths += find_images(args.images)
        except FileNotFoundError as exc:
            parser.error(str(exc))
    if not paths:
        parser.error("nothing to predict: give COVER files or --images DIR")
    try:
        art = Artifact.load(args.artifact, args.variant, providers=["CPUExecutionProvider"] if args.cpu else None,
                            expect_sha256=args.expect_sha256)
    except ArtifactError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = 0
    progress = Progress(len(paths), not args.quiet)
    stream = art.iter_predictions(paths, args.batch_size)
    try:
        for r in stream:
            line = json.dumps(r) + "\n"
            progress.done += 1  # counted before the write: Ctrl-C mostly lands during a flush
            if "error" in r:
                failed += 1
                progress.write(f"error: {r['path']}: {r['error']}")
            sys.stdout.write(line)
            sys.stdout.flush()
            progress.update(0)
    except KeyboardInterrupt:
        progress.close()
        print(f"interrupted; {progress.done} covers done", file=sys.stderr)
        return 130
    finally:
        stream.close()  # stops the decoding threads
    progress.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
