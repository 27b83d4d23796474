"""The CORAL-CNN classifier: ResNet-34 + CORAL head, its training, evaluation and prediction.

model       CoralResNet34: ResNet-34 -> shared logit g, plus the K-1 CORAL biases
resnet      torchvision's ResNet-34, bitwise, without importing torchvision (1.4 s of every cold start)
config      TrainConfig and the paper / quick presets
train       the training loop (one process or DDP under torchrun), run directory, resume
step        one training step with no host sync: eager, compiled, or replayed as a CUDA graph
evaluate    metrics on dataset splits beside the trivial and colour-histogram baselines, with intervals
stats       bootstrap intervals and Spearman permutation tests
histogram   the colour-histogram ridge baseline
schedule    the optimiser (Adam / AdamW) and learning-rate schedule
batchnorm   precise BatchNorm: running statistics re-estimated for the weights being evaluated
study       the whole protocol over seeds: does the cover carry signal? (report: study_report)
predict     loading a checkpoint, predicting cached arrays or cover files, embedding pixels
metrics     MAE / RMSE / accuracy, the trivial baselines, the confusion matrix
report      curves.png, confusion.png and report.md
distributed torch.distributed (DDP) setup for torchrun

Other features (explain, export, the GAN) use only the names exported here. They are imported
on first use, so ``from bookcover.classifier import load_classifier`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_PUBLIC = {
    "CoralResNet34": "model",
    "FEATURE_DIM": "model",
    "TrainConfig": "config",
    "preset": "config",
    "PRESETS": "config",
    "QUICK_HELP": "config",
    "PAPER_HELP": "config",
    "train_classifier": "train",
    "evaluate_checkpoint": "evaluate",
    "evaluate_splits": "evaluate",
    "checkpoint_test_metrics": "evaluate",
    "run_study": "study",
    "Classifier": "predict",
    "build_model": "predict",
    "load_classifier": "predict",
    "predict_pixels": "predict",
    "predict_files": "predict",
    "iter_predictions": "predict",
    "embed_pixels": "predict",
}

__all__ = [
    "Classifier",
    "CoralResNet34",
    "FEATURE_DIM",
    "PAPER_HELP",
    "PRESETS",
    "QUICK_HELP",
    "TrainConfig",
    "build_model",
    "checkpoint_test_metrics",
    "embed_pixels",
    "evaluate_checkpoint",
    "evaluate_splits",
    "iter_predictions",
    "load_classifier",
    "predict_files",
    "predict_pixels",
    "preset",
    "run_study",
    "train_classifier",
]
assert set(__all__) == set(_PUBLIC)

if TYPE_CHECKING:  # what type checkers and editors see; at run time names load on first use
    from bookcover.classifier.config import PAPER_HELP, PRESETS, QUICK_HELP, TrainConfig, preset
    from bookcover.classifier.evaluate import checkpoint_test_metrics, evaluate_checkpoint, evaluate_splits
    from bookcover.classifier.model import FEATURE_DIM, CoralResNet34
    from bookcover.classifier.predict import (
        Classifier,
        build_model,
        embed_pixels,
        iter_predictions,
        load_classifier,
        predict_files,
        predict_pixels,
    )
    from bookcover.classifier.study import run_study
    from bookcover.classifier.train import train_classifier


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'bookcover.classifier' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"bookcover.classifier.{_PUBLIC[name]}"), name)
    globals()[name] = value
    return value
