"""FID, KID, diversity and memorisation on cases whose answer is known."""

import numpy as np
import pytest
import torch

from bookcover.gan.features import frechet_distance, kernel_inception_distance
from bookcover.gan.neighbours import mean_pairwise_distance, memorisation


def test_frechet_distance_of_shifted_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 4))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shift = np.array([1.0, 2.0, 0.0, 0.0])
    # same covariance, mean shifted: FID = |shift|^2 = 5
    assert frechet_distance(a, a + shift) == pytest.approx(5.0, abs=1e-6)
    # scaled: sigma 1 vs 2 per dim -> (1 + 4 - 2 * 2) = 1 per dim, up to sampling noise
    assert frechet_distance(a, 2 * rng.normal(size=(4000, 4))) == pytest.approx(4.0, rel=0.1)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(500, 8)), rng.normal(size=(500, 8))
    same, _ = kernel_inception_distance(a, b, subsets=10, subset_size=200)
    diff, _ = kernel_inception_distance(a, b + 1.0, subsets=10, subset_size=200)
    assert abs(same) < 0.05 < diff


def test_diversity_is_zero_for_copies():
    x = torch.rand(1, 3, 64, 64).repeat(5, 1, 1, 1)
    assert mean_pairwise_distance(x) == pytest.approx(0.0, abs=1e-6)
    assert mean_pairwise_distance(torch.rand(5, 3, 64, 64)) > 0.1


def test_memorisation_flags_copies_of_training_images():
    gen = torch.Generator().manual_seed(0)
    train = torch.rand(40, 3, 64, 64, generator=gen) * 2 - 1
    fresh = torch.rand(6, 3, 64, 64, generator=gen) * 2 - 1
    generated = torch.cat([train[:3], fresh])  # three copies, six new images
    mem = memorisation(generated, train, train[:20], train[20:])
    assert mem["flagged"] == 3
    assert mem["flagged_indices"] == [0, 1, 2]
    assert mem["generated_min"] == pytest.approx(0.0, abs=1e-5)
