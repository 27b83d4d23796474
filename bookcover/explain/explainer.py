"""Explain one cover: lime's algorithm with every perturbation built and predicted in bulk.

The steps and random draws are lime_image 0.2.0.1's, in its order (see :mod:`.masks`):
segment -> draw masks -> build the fill -> perturb and predict -> kernel-weighted ridge. Only
the mechanics differ: perturbations are built on the model's device in one ``torch.where`` per
chunk and the ridge is solved there too, so the same seed gives lime's masks at a fraction of
lime's cost. The steps before the model live in :mod:`.prepare` (no torch), so that
:class:`~bookcover.explain.prepare.CoverPipeline` can run them ahead in worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bookcover.data.batches import center_crop
from bookcover.explain.adapters import ExplainModel, predict_chunked
from bookcover.explain.perturb import perturb
from bookcover.explain.prepare import ExplainOptions, PreparedImage, prepare_image
from bookcover.explain.surrogate import fit_surrogate
from bookcover.explain.targets import target_task, target_values


@dataclass
class Explanation:
    """One cover's explanation: superpixels, their surrogate weights and the fit's quality."""

    image: np.ndarray  # uint8 (H, W, 3) at the model's input size
    segments: np.ndarray  # int64 (H, W), ids 0..n-1
    fill: np.ndarray  # uint8 (H, W, 3): what a hidden superpixel shows
    weights: np.ndarray  # float64 (n,)
    intercept: float
    r2: float
    local_pred: float
    target: str
    task: int  # CORAL task k for target "proba"
    rank: int  # predicted level of the unperturbed cover
    probas: list[float]  # P(level > k) of the unperturbed cover
    value: float  # target value of the unperturbed cover

    @property
    def n_segments(self) -> int:
        return int(self.weights.shape[0])

    def ranked(self) -> list[int]:
        """Segment ids by decreasing |weight|, lime's ``local_exp`` order (stable on ties)."""
        return [int(i) for i in np.argsort(-np.abs(self.weights), kind="stable")]

    def by_weight(self) -> np.ndarray:
        """Segment ids from the most positive to the most negative weight."""
        return np.argsort(-self.weights, kind="stable")


def crop_segments(segments: torch.Tensor, crop: int) -> torch.Tensor:
    """The center crop of a (H, W) segment map, matching center_crop of the cover."""
    return center_crop(segments[None, :, :, None], crop)[0, :, :, 0]


def predict_masks(
    model: ExplainModel, image: np.ndarray, segments: np.ndarray, fill: np.ndarray, masks: np.ndarray | torch.Tensor,
    batch: int | None = None,
) -> dict[str, torch.Tensor]:
    """Predictions for every mask row: the cover where the row is 1, the fill where it is 0.

    Cover and fill are cropped and prepared once; each chunk of samples is then one
    ``where(mask[:, segments], image, fill)`` in the model's input space, on its device.
    """
    dev = model.device
    masks_t = torch.as_tensor(masks, device=dev)
    crop = model.crop
    seg_t = crop_segments(torch.from_numpy(np.ascontiguousarray(segments)).to(dev), crop)
    image_in = model.prepare(center_crop(torch.from_numpy(np.array(image)).to(dev)[None], crop))[0]
    fill_in = model.prepare(center_crop(torch.from_numpy(np.array(fill)).to(dev)[None], crop))[0]
    return predict_chunked(model, masks_t.shape[0], lambda a, b: perturb(image_in, seg_t, masks_t[a:b], fill_in), batch)


def explain_image(model: ExplainModel, image: np.ndarray, options: ExplainOptions | None = None) -> Explanation:
    """Explain a uint8 (H, W, 3) cover at ``model.image_size`` with lime's algorithm."""
    opt = options or ExplainOptions()
    if tuple(image.shape[:2]) != tuple(model.image_size):
        raise ValueError(f"cover is {image.shape[:2]}, the model expects {model.image_size}")
    return explain_prepared(model, prepare_image(image, opt), opt)


def explain_prepared(model: ExplainModel, prep: PreparedImage, options: ExplainOptions) -> Explanation:
    """The device half of :func:`explain_image`: perturb, predict, fit lime's surrogate."""
    out = predict_masks(model, prep.image, prep.segments, prep.fill, prep.masks, options.batch)
    probas0 = out["probas"][0].double()
    rank = int((probas0 > 0.5).sum())
    task = target_task(rank)
    y = target_values(out, options.target, task)
    fit = fit_surrogate(torch.as_tensor(prep.masks, device=y.device), y)
    return Explanation(
        image=prep.image,
        segments=prep.segments,
        fill=prep.fill,
        weights=fit.coef.cpu().numpy(),
        intercept=fit.intercept,
        r2=fit.r2,
        local_pred=fit.local_pred,
        target=options.target,
        task=task,
        rank=rank,
        probas=[float(p) for p in probas0.cpu()],
        value=float(y[0]),
    )
