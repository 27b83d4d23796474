"""Deletion/insertion curves: masks, AUC, and a model whose answer we know."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bookcover.coral import coral_predict, level_probabilities
from bookcover.explain.adapters import TorchModel
from bookcover.explain.explainer import ExplainOptions, explain_image
from bookcover.explain.faithfulness import auc, curve_masks, faithfulness


def test_curve_masks_follow_the_order():
    deletion, insertion = curve_masks(np.array([2, 0, 1]), 3)
    assert deletion.tolist() == [[1, 1, 1], [1, 1, 0], [0, 1, 0], [0, 0, 0]]
    assert insertion.tolist() == [[0, 0, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1]]


def test_auc_is_the_trapezoid_over_fractions():
    assert auc(np.array([1.0, 0.0])) == pytest.approx(0.5)
    assert auc(np.array([1.0, 1.0, 0.0])) == pytest.approx(0.75)


class RedTopLeft(torch.nn.Module):
    """A model that only looks at how red the top-left quarter is: we know what should matter."""

    num_levels = 3

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(4.0))
        self.coral_bias = torch.nn.Parameter(torch.tensor([0.0, -1.0]))

    def forward(self, x):
        h, w = x.shape[2] // 2, x.shape[3] // 2
        return self.scale * x[:, 0, :h, :w].mean((1, 2))

    @torch.no_grad()
    def predict(self, x):
        probas, rank = coral_predict(self(x), self.coral_bias)
        return {"probas": probas, "rank": rank, "level_probs": level_probabilities(probas)}


def test_a_faithful_explanation_beats_random_orders():
    image = np.full((32, 32, 3), 40, np.uint8)
    image[:, :, 2] = np.linspace(0, 255, 32, dtype=np.uint8)[None, :]  # give slic some structure
    image[:16, :16] = (250, 20, 20)
    model = TorchModel(RedTopLeft(), (32, 32), 32, 3)
    exp = explain_image(model, image, ExplainOptions(samples=300, segmenter="slic", hide_color=0, seed=1))
    top = exp.by_weight()[0]
    inside = exp.segments == top
    assert inside[:16, :16].sum() > 0.5 * inside.sum()  # the top superpixel lies in the red quarter
    faith = faithfulness(model, exp, seed=1)
    assert len(faith.deletion) == exp.n_segments + 1
    assert faith.deletion[0] == pytest.approx(exp.value) and faith.insertion[-1] == pytest.approx(exp.value)
    assert faith.deletion_auc < faith.random_deletion_auc
    assert faith.insertion_auc > faith.random_insertion_auc
