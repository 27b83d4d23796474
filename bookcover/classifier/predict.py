"""Load a trained classifier and predict levels for cached arrays or cover files."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from bookcover.checkpoint import CLASSIFIER_KIND, load_checkpoint
from bookcover.classifier.config import TrainConfig
from bookcover.classifier.model import FEATURE_DIM, CoralResNet34
from bookcover.coral import coral_predict
from bookcover.data.batches import eval_batch
from bookcover.data.images import decode_ahead, load_cover
from bookcover.devices import resolve_device


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
    with torch.device("meta"):  # no random initialisation of 21 M weights about to be replaced
        model = build_model(config)
    model.load_state_dict(ckpt["model"], assign=True)  # strict: every weight and buffer comes from the file
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


def prediction_record(path: str | Path, probas: np.ndarray, rank: int, level_probs: np.ndarray) -> dict:
    """One cover's JSON-ready prediction. ``level`` is CORAL's rank, the number of P(level > k)
    above 0.5; it can differ from argmax(level_probs). ``expected_level`` is sum_k P(level > k)."""
    return {
        "path": str(path),
        "level": int(rank),
        "expected_level": float(np.sum(probas, dtype=np.float64)),
        "probas": [float(v) for v in probas],
        "level_probs": [float(v) for v in level_probs],
    }


def error_record(path: str | Path, exc: Exception) -> dict:
    """{"path", "error"} for a cover that could not be read; the reason without the path prefix."""
    text, prefix = str(exc), f"{path}: "
    return {"path": str(path), "error": text[len(prefix):] if text.startswith(prefix) else text}


def iter_predictions(
    clf: Classifier, paths: Sequence[str | Path], batch_size: int = 64, workers: int | None = None
) -> Iterator[dict]:
    """Yield one record per path, in order, as each batch finishes (see prediction_record), or
    {"path", "error"} for a cover that cannot be read. Covers decode in a thread pool ahead of
    the model (data.images.decode_ahead), so the model does not wait on PIL."""
    load = partial(load_cover, size=clf.image_size)
    for batch, decoded in decode_ahead(load, paths, batch_size, workers):
        good = [j for j, d in enumerate(decoded) if isinstance(d, np.ndarray)]
        pred = predict_pixels(clf.model, np.stack([decoded[j] for j in good]), clf.config.crop, batch_size) if good else None
        row = {j: i for i, j in enumerate(good)}
        for j, path in enumerate(batch):
            if j in row:
                i = row[j]
                yield prediction_record(path, pred["probas"][i], pred["rank"][i], pred["level_probs"][i])
            else:
                yield error_record(path, decoded[j])


def predict_files(clf: Classifier, paths: list[str | Path], batch_size: int = 64) -> list[dict]:
    """Predict each cover file; unreadable ones come back as {"path", "error"}."""
    return list(iter_predictions(clf, paths, batch_size))


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
