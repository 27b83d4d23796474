"""The page's "explain" button: the LIME overlay that ``bookcover-fast explain`` draws.

It runs the existing explain code unchanged (lime's segmentation, masks and surrogate, the
readable overlay with its signed tint and legend) on the torch checkpoint the artifact was
exported from: LIME needs a thousand model calls per cover, which is what the checkpoint path
of :mod:`bookcover.explain` is built for. A checkpoint other than the artifact's own is refused,
since its explanations would not be of the served predictions.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

from PIL import Image

from bookcover.errors import CoverError, UsageError


class Explainer:
    def __init__(self, checkpoint: str | Path, artifact_checkpoint_sha256: str | None, samples: int = 1000,
                 device: str = "auto"):
        from bookcover.explain.adapters import load_model
        from bookcover.explain.prepare import ExplainOptions
        from bookcover.export import sha256_file

        checkpoint = Path(checkpoint)
        if not checkpoint.is_file():
            raise UsageError(f"--checkpoint {checkpoint}: no such file")
        if artifact_checkpoint_sha256 and sha256_file(checkpoint) != artifact_checkpoint_sha256:
            raise UsageError(f"--checkpoint {checkpoint} is not the checkpoint the artifact was exported from "
                             "(its sha256 differs): its explanations would not match the served predictions")
        self.model = load_model(checkpoint=checkpoint, device=device)
        self.options = ExplainOptions(samples=samples)

    def overlay_png(self, data: bytes, spool: str) -> bytes:
        """The readable overlay (cover | explained cover | legend) of one uploaded cover, as PNG.
        Raises CoverError with the reason for an unreadable upload."""
        from bookcover.explain.explainer import explain_prepared
        from bookcover.explain.prepare import prepare_cover
        from bookcover.explain.render import readable_overlay

        fd, tmp = tempfile.mkstemp(prefix="bookcover-explain-", dir=spool)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            cover = prepare_cover(tmp, self.model.image_size, self.options)
            if cover.error is not None:
                reason = cover.error
                raise CoverError(reason[len(tmp) + 2:] if reason.startswith(f"{tmp}: ") else reason)
            exp = explain_prepared(self.model, cover.prepared, self.options)
            picture = readable_overlay(exp, tmp, self.model.crop)
        finally:
            os.unlink(tmp)
        buf = io.BytesIO()
        Image.fromarray(picture).save(buf, format="PNG")
        return buf.getvalue()
