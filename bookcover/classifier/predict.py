"""Load a trained classifier and predict levels for cached arrays or cover files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bookcover.checkpoint import CLASSIFIER_KIND, load_checkpoint
from bookcover.classifier.config import TrainConfig
from bookcover.classifier.model import FEATURE_DIM, CoralResNet34
from bookcover.coral import coral_predict
from bookcover.data.batches import eval_batch
from bookcover.data.images import load_cover
from bookcover.devices import resolve_device
from bookcover.errors import CoverError


@dataclass
class Classifier:
    """A model in eval mode plus what is needed to feed it: cache size and crop."""

    model: CoralResNet34
    config: TrainConfig
    checkpoint: dict
    device: torch.device

    @property
    def image_size(self) -> tuple[int, int]:
        return (self.config.image_size, self.config.image_size)

    @property
    def num_levels(self) -> int:
        return self.config.num_levels


def build_model(config: TrainConfig) -> CoralResNet34:
    return CoralResNet34(num_levels=config.num_levels, dropout=config.dropout)


def load_classifier(path: str | Path, device: str = "auto") -> Classifier:
    """Load best.pt / last.pt of a classifier run (weights_only, kind-checked)."""
    dev = resolve_device(device)
    ckpt = load_checkpoint(path, CLASSIFIER_KIND, map_location="cpu")
    config = TrainConfig.from_dict(ckpt["config"])
    model = build_model(config)
    model.load_state_dict(ckpt["model"])
    model = model.to(dev).to(memory_format=torch.channels_last).eval()
    return Classifier(model, config, ckpt, dev)


@torch.no_grad()
def predict_pixels(
    model: CoralResNet34, pixels: torch.Tensor | np.ndarray, crop: int, batch_size: int = 256
) -> dict[str, np.ndarray]:
    """Center-crop uint8 (N, H, W, 3) covers and predict: probas, rank, level_probs (numpy)."""
    device = next(model.parameters()).device
    pixels = torch.as_tensor(pixels)
    was_training = model.training
    model.eval()
    outs: dict[str, list] = {"probas": [], "rank": [], "level_probs": []}
    for a in range(0, pixels.shape[0], batch_size):
        x = eval_batch(pixels[a : a + batch_size].to(device, non_blocking=True), crop)
        for k, v in model.predict(x).items():
            outs[k].append(v.cpu())
    model.train(was_training)
    if not outs["rank"]:
        k = model.num_levels
        return {"probas": np.zeros((0, k - 1)), "rank": np.zeros(0, np.int64), "level_probs": np.zeros((0, k))}
    return {k: torch.cat(v).numpy() for k, v in outs.items()}


def predict_files(clf: Classifier, paths: list[str | Path], batch_size: int = 64) -> list[dict]:
    """Predict each cover file; unreadable ones come back with an 'error' and no prediction."""
    results: list[dict] = [{"path": str(p)} for p in paths]
    good, arrays = [], []
    for i, p in enumerate(paths):
        try:
            arrays.append(load_cover(p, clf.image_size))
            good.append(i)
        except CoverError as exc:
            results[i]["error"] = str(exc)
    if good:
        pred = predict_pixels(clf.model, np.stack(arrays), clf.config.crop, batch_size)
        for j, i in enumerate(good):
            results[i].update(
                level=int(pred["rank"][j]),
                probas=[float(v) for v in pred["probas"][j]],
                level_probs=[float(v) for v in pred["level_probs"][j]],
            )
    return results


@torch.no_grad()
def embed_pixels(clf: Classifier, pixels: torch.Tensor, batch_size: int = 128) -> dict[str, torch.Tensor]:
    """Penultimate features and CORAL outputs of uint8 (N, H, W, 3) covers at clf.image_size.

    The one way other features (the GAN's FID/KID and popularity search) look through a trained
    classifier. Returns CPU float tensors: features (N, 512), logit (N,), probas P(level > k)
    (N, K-1), rank (N,) and the expected level sum_k P(level > k) (N,).
    """
    model = clf.model
    model.eval()
    feats, logits = [], []
    for a in range(0, pixels.shape[0], batch_size):
        x = eval_batch(pixels[a : a + batch_size].to(clf.device), clf.config.crop)
        h = model.features(x)
        feats.append(h.float().cpu())
        logits.append(model.head(h).squeeze(1).float().cpu())
    features = torch.cat(feats) if feats else torch.zeros(0, FEATURE_DIM)
    logit = torch.cat(logits) if logits else torch.zeros(0)
    probas, rank = coral_predict(logit, model.coral_bias.detach().float().cpu())
    probas = probas.float()
    return {"features": features, "logit": logit, "probas": probas, "rank": rank, "expected": probas.sum(1)}
