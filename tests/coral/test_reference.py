"""The CORAL oracle against coral-pytorch's conventions, with hard golden values."""

import pytest
import torch

from bookcover.coral import (
    coral_loss,
    coral_predict,
    level_probabilities,
    levels_from_labels,
    task_importance_weights,
)
from bookcover.coral.reference import check_labels
from bookcover.errors import InvalidLabelsError

LOGIT = torch.tensor([0.5, -1.0, 2.0, 0.0])
BIAS = torch.tensor([1.0, 0.0, -1.0, -2.0])
LABELS = torch.tensor([0, 2, 4, 1])


def test_levels_from_labels_matches_definition():
    levels = levels_from_labels(torch.tensor([0, 1, 4]), 5)
    assert levels.tolist() == [[0, 0, 0, 0], [1, 0, 0, 0], [1, 1, 1, 1]]


def test_loss_golden_value():
    # Worked by hand: z = g + b; loss = mean_i -sum_k [y log s(z) + (1-y) log(1-s(z))].
    assert coral_loss(LOGIT, BIAS, LABELS).item() == pytest.approx(2.0403569, abs=1e-6)


def test_loss_matches_coral_pytorch():
    coral_pytorch = pytest.importorskip("coral_pytorch.losses")
    torch.manual_seed(0)
    g, b = torch.randn(64), torch.randn(6)
    y = torch.randint(0, 7, (64,))
    levels = levels_from_labels(y, 7)
    expected = coral_pytorch.coral_loss(g[:, None] + b, levels)
    assert coral_loss(g, b, y).item() == pytest.approx(expected.item(), abs=1e-6)
    w = task_importance_weights(y, 7)
    expected_w = coral_pytorch.coral_loss(g[:, None] + b, levels, importance_weights=w)
    assert coral_loss(g, b, y, w).item() == pytest.approx(expected_w.item(), abs=1e-6)


def test_task_importance_weights_golden():
    # labels 0,0,0,1,2: thresholds split 2/3, 1/4, 0/5 -> m = 3, 4, 5
    w = task_importance_weights(torch.tensor([0, 0, 0, 1, 2]), 4)
    expected = torch.tensor([3.0, 4.0, 5.0]).sqrt() / 5**0.5
    torch.testing.assert_close(w, expected)


def test_predict_golden():
    probas, rank = coral_predict(LOGIT, BIAS)
    expected = torch.sigmoid(LOGIT[:, None] + BIAS)
    torch.testing.assert_close(probas, expected)
    assert rank.tolist() == [2, 0, 3, 1]  # number of z_k > 0 (z = 0 is p = 0.5: not above)
    assert rank.dtype == torch.int64


def test_level_probabilities_sum_to_one_and_match_differences():
    probas, _ = coral_predict(LOGIT, BIAS)
    lp = level_probabilities(probas)
    assert lp.shape == (4, 5)
    torch.testing.assert_close(lp.sum(1), torch.ones(4))
    torch.testing.assert_close(lp[:, 0], 1 - probas[:, 0])
    torch.testing.assert_close(lp[:, -1], probas[:, -1])


def test_extreme_logits_stay_finite():
    g = torch.tensor([80.0, -80.0], requires_grad=True)
    loss = coral_loss(g, torch.zeros(4), torch.tensor([0, 4]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(g.grad).all()
    assert loss.item() == pytest.approx(320.0, rel=1e-6)


def test_float_labels_are_rejected():
    with pytest.raises(InvalidLabelsError, match="integer"):
        coral_loss(torch.zeros(2), torch.zeros(4), torch.tensor([0.0, 1.0]))


@pytest.mark.parametrize("labels", [torch.tensor([0, 5]), torch.tensor([-1, 2])])
def test_out_of_range_labels_make_the_loss_nan(labels):
    # No per-call sync: the range is checked on the device (NaN), or on request.
    assert torch.isnan(coral_loss(torch.zeros(2), torch.zeros(4), labels))
    with pytest.raises(InvalidLabelsError, match=r"0\.\.4"):
        check_labels(labels, 5)
    with pytest.raises(InvalidLabelsError, match="labels"):
        levels_from_labels(labels, 5)  # the data-side helper validates
