"""Shared test material: a small real-looking cover and tiny deterministic models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from bookcover.data.batches import normalise
from bookcover.data.images import resize_cover
from bookcover.data.synth import _font, render_cover
from bookcover.explain.adapters import TorchModel
from tests.explain.tiny_model import TinyCoral

SIZE, CROP = 48, 40


def cover(size: int = SIZE, seed: int = 1) -> np.ndarray:
    """A synthetic cover (badge, emblem, title band) resized to size x size."""
    feats = {"badge": 1.0, "contrast": 0.8, "emblem": 1.0, "harmony": 0.3, "score": 2.0}
    img, _, _ = render_cover(feats, np.random.default_rng(seed), (_font(15), _font(9)))
    return np.array(resize_cover(img, (size, size)), dtype=np.uint8)


def tiny_model(size: int = SIZE, crop: int = CROP) -> TorchModel:
    torch.manual_seed(0)
    return TorchModel(TinyCoral(num_levels=5, seed=0), (size, size), crop, 5)


class PixelsToCoral(torch.nn.Module):
    """The ONNX artifact contract around TinyCoral: uint8 NHWC pixels in, CORAL outputs out."""

    def __init__(self) -> None:
        super().__init__()
        self.net = TinyCoral(num_levels=5, seed=0)

    def forward(self, pixels: torch.Tensor):
        out = self.net.predict(normalise(pixels))
        return out["probas"], out["rank"], out["level_probs"]


def export_tiny_onnx(folder: Path, size: int = SIZE, crop: int = CROP) -> Path:
    """A tiny artifact folder (model.onnx + input_spec metadata + manifest.json) independent of
    the exporter's graph."""
    import onnx

    from bookcover.export import write_manifest

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    torch.onnx.export(
        PixelsToCoral().eval(), (torch.zeros(2, crop, crop, 3, dtype=torch.uint8),), str(path),
        input_names=["pixels"], output_names=["probas", "rank", "level_probs"],
        dynamic_axes={"pixels": {0: "batch"}}, dynamo=False,
    )
    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key = "bookcover.input_spec"
    entry.value = json.dumps({"resize": [size, size], "crop": crop})
    onnx.save(model, str(path))
    write_manifest(folder)
    return folder
