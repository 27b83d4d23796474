"""Open the artifact a score job runs, through the consumer (verification, pinning, ORT threads)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bookcover.consumer import load_consumer
from bookcover.errors import ArtifactError


@dataclass(frozen=True)
class ArtifactRef:
    """Where an artifact is and how to open it: small and picklable, so Ray actors open their own."""

    folder: str
    variant: str
    expect_sha256: str | None = None

    def open(self, threads: int | None = None, providers: list[str] | None = None) -> Any:
        """The consumer's verified Artifact with ``threads`` intra-op threads (onnxruntime ignores
        OMP_NUM_THREADS, so it is always set explicitly); ArtifactError is one line, exit 2."""
        consumer = load_consumer()
        try:
            return consumer.Artifact.load(self.folder, self.variant, providers=providers, threads=threads,
                                          expect_sha256=self.expect_sha256)
        except consumer.ArtifactError as exc:
            raise ArtifactError(str(exc)) from None

    def model_sha256(self) -> str:
        """The model file's sha256 as the verified manifest lists it (what --expect-sha256 pins)."""
        consumer = load_consumer()
        manifest = json.loads((Path(self.folder) / consumer.MANIFEST_FILE).read_text())
        return manifest["files"][self.variant]["sha256"]


def artifact_ref(folder: str | Path, variant: str | None = None, expect_sha256: str | None = None) -> ArtifactRef:
    """An ArtifactRef from --artifact (a folder, or its model file) and --variant."""
    folder = Path(folder)
    if variant is None and folder.suffix == ".onnx":
        folder, variant = folder.parent, folder.name
    return ArtifactRef(str(folder.absolute()), variant or load_consumer().MODEL_FILE, expect_sha256)
