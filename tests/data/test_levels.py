"""Ranking into equal levels and the stratified split."""

import numpy as np
import pytest

from bookcover.data.levels import TEST, TRAIN, VAL, assign_levels, stratified_split
from bookcover.errors import DataError


def test_levels_are_equal_and_top_is_most_popular():
    scores = np.arange(103, dtype=float)  # item 102 is the most popular
    keep, labels = assign_levels(scores, 5, drop_remainder=True)
    assert keep.size == 100
    assert np.bincount(labels).tolist() == [20] * 5
    by_item = dict(zip(keep.tolist(), labels.tolist(), strict=True))
    assert by_item[102] == 4 and by_item[3] == 0
    assert 0 not in by_item and 2 not in by_item  # the 3 least popular are the remainder


def test_without_dropping_the_remainder_sizes_differ_by_at_most_one():
    keep, labels = assign_levels(np.random.default_rng(0).random(103), 5, drop_remainder=False)
    counts = np.bincount(labels)
    assert keep.size == 103 and counts.max() - counts.min() <= 1


def test_ties_keep_list_order():
    keep, labels = assign_levels(np.zeros(10), 2)
    assert labels[keep.argsort()].tolist() == [1] * 5 + [0] * 5


def test_split_is_stratified_and_reproducible():
    labels = np.repeat(np.arange(5), 100)
    split = stratified_split(labels, seed=7)
    for level in range(5):
        part = split[labels == level]
        assert [(part == s).sum() for s in (TRAIN, VAL, TEST)] == [80, 10, 10]
    assert (split == stratified_split(labels, seed=7)).all()
    assert (split != stratified_split(labels, seed=8)).any()


def test_too_few_covers():
    with pytest.raises(DataError, match="at least 5"):
        assign_levels(np.arange(3.0), 5)
