"""The lazy noise sampling has the distribution of drawing every cell."""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from raypf.simulate import noise


def test_tail_cells_are_a_bernoulli_process():
    rng = np.random.default_rng(1)
    n = 2_000_000
    idx = noise.tail_cells(n, 2.0, rng)
    assert np.all(np.diff(idx) > 0) and idx.min() >= 0 and idx.max() < n
    p = 2 * ndtr(-2.0)
    assert abs(len(idx) - n * p) < 5 * np.sqrt(n * p * (1 - p))
    # uniform over the range: halves hold equal shares
    assert abs(np.mean(idx < n // 2) - 0.5) < 0.01


def test_tail_and_quiet_values_rebuild_a_standard_normal():
    rng = np.random.default_rng(2)
    n = 1_000_000
    x = noise.quiet_values(n, 2.0, rng)
    assert np.abs(x).max() <= 2.0
    idx = noise.tail_cells(n, 2.0, rng)
    tail = noise.tail_values(len(idx), 2.0, rng)
    assert np.abs(tail).min() > 2.0
    x[idx] = tail
    assert abs(x.mean()) < 0.005
    assert abs(x.std() - 1.0) < 0.005
    for k in (1.0, 3.0, 4.0):
        assert abs(np.mean(np.abs(x) > k) / (2 * ndtr(-k)) - 1) < 0.1 + 3 / np.sqrt(n * 2 * ndtr(-k))


def test_band_values_follow_the_truncated_gaussian():
    """Cells between the growing and seed thresholds get values from exactly that band of the Gaussian."""
    rng = np.random.default_rng(3)
    x = noise.tail_values(400_000, 2.0, rng, upper=4.0)
    a = np.abs(x)
    assert a.min() > 2.0 and a.max() <= 4.0
    band = ndtr(-2.0) - ndtr(-4.0)
    for k in (2.5, 3.0, 3.5):
        expected = (ndtr(-k) - ndtr(-4.0)) / band
        assert abs(np.mean(a > k) - expected) < 4 * np.sqrt(expected * (1 - expected) / len(a))
    assert abs(np.mean(x > 0) - 0.5) < 0.005
