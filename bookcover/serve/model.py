"""The served model: one verified artifact, loaded through the consumer, and upload decoding.

Everything that touches pixels goes through export/predict.py (``bookcover.consumer``), the
same code a production team copies: artifact verification and pinning, provider choice,
decoding (the 40-megapixel cap, truncation, grayscale/CMYK/alpha handling) and preprocessing.
The consumer decodes files, so an upload is written to a memory-backed temp file first: one
implementation, not a second decoder for bytes that could drift from the first.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bookcover.consumer import load_consumer
from bookcover.errors import ArtifactError

MODEL_NAME = "bookcover"  # the v2 model name (also the Triton repository's folder)


class UploadError(Exception):
    """An upload that is not a readable cover; the message is the reason, without a path."""


def spool_dir() -> str:
    """Where uploads are written for decoding: /dev/shm (memory) when usable, else the temp dir."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else tempfile.gettempdir()


@dataclass
class ServedModel:
    """A verified artifact and what the service says about it."""

    artifact: Any  # the consumer's Artifact
    folder: Path
    sha256: str
    levels: int
    crop: int
    spool: str

    @classmethod
    def load(cls, folder: str | Path, expect_sha256: str | None = None, threads: int | None = None,
             providers: list[str] | None = None) -> ServedModel:
        """``Artifact.load`` (manifest hashes, the pinned sha256), with ``threads`` ONNX Runtime
        intra-op threads and the consumer's providers (CUDA first when onnxruntime-gpu sees a GPU)."""
        consumer = load_consumer()
        folder = Path(folder)
        try:
            art = consumer.Artifact.load(folder, consumer.MODEL_FILE, providers=providers, threads=threads,
                                         expect_sha256=expect_sha256)
        except consumer.ArtifactError as exc:
            raise ArtifactError(str(exc)) from None
        manifest = json.loads((folder / consumer.MANIFEST_FILE).read_text())  # verified by load
        return cls(art, folder, manifest["files"][consumer.MODEL_FILE]["sha256"],
                   int(art.metadata["bookcover.levels"]), int(art.input_spec["crop"]), spool_dir())

    @property
    def providers(self) -> list[str]:
        return list(self.artifact.providers)

    def decode(self, data: bytes) -> np.ndarray:
        """Upload bytes -> uint8 (crop, crop, 3), exactly as predict.py preprocesses a file.
        Raises UploadError with the consumer's reason (empty, not an image, truncated, too large)."""
        consumer = load_consumer()
        fd, tmp = tempfile.mkstemp(prefix="bookcover-upload-", dir=self.spool)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            return self.artifact.preprocess(tmp)
        except consumer.CoverError as exc:
            raise UploadError(consumer.error_record(tmp, exc)["error"]) from None
        finally:
            os.unlink(tmp)

    def run(self, pixels: np.ndarray, max_batch: int | None = None) -> dict[str, np.ndarray]:
        """probas, rank, level_probs: one ONNX Runtime call, or one per ``max_batch`` covers."""
        return self.artifact.predict_pixels(pixels, batch_size=max_batch or max(1, len(pixels)))

    def warm(self, batch: int) -> None:
        """Run the session once at batch 1 and at ``batch``, so the first request pays no setup."""
        for n in sorted({1, batch}):
            self.run(np.zeros((n, self.crop, self.crop, 3), np.uint8))

    def records(self, names: list[str], pred: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        """predict --json's records: path, level, expected_level, probas, level_probs."""
        return load_consumer().prediction_records(names, pred)
