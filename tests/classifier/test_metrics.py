"""Ordinal metrics and the trivial baselines."""

import numpy as np

from bookcover.classifier.metrics import baselines, confusion_matrix, ordinal_metrics


def test_metrics_golden():
    m = ordinal_metrics(np.array([0, 2, 4, 1]), np.array([0, 1, 2, 1]))
    assert m == {"mae": 0.75, "rmse": np.sqrt(5 / 4), "accuracy": 0.5, "n": 4}


def test_always_middle_on_five_balanced_levels_is_1_2():
    labels = np.repeat(np.arange(5), 20)
    b = baselines(labels, 5)
    assert b["middle"]["mae"] == 1.2
    assert b["majority"]["mae"] == 1.2  # balanced: the tie goes to the middle level


def test_majority_is_the_sets_own_and_the_prior_follows_train_labels():
    b = baselines(np.array([3, 3, 4]), 5, train_labels=np.array([4, 4, 4, 0]))
    assert b["majority"]["level"] == 3 and b["majority"]["mae"] == 1 / 3  # the evaluated set's histogram
    assert b["prior"]["level"] == 4 and b["prior"]["mae"] == 2 / 3  # the median training level


def test_confusion_matrix():
    cm = confusion_matrix(np.array([0, 1, 1]), np.array([0, 0, 1]), 2)
    assert cm.tolist() == [[1, 1], [0, 1]]
