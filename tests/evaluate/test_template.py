"""The E/p template: per-bin means and spreads, filled sparse bins, and the reference energy of a sample."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from raypf.evaluate.template import EpTemplate, fit_template, reference_energy


def test_bins_hold_mean_and_spread_and_sparse_bins_take_their_p_row():
    # p bin [0, 10): eta bin [0, 1) gets E/p 0.4 and 0.6 x 10 each; eta bin [1, 3) only 2 tracks (sparse)
    p = np.array([5.0] * 20 + [5.0, 5.0] + [50.0] * 20)
    eta = np.array([0.5] * 20 + [-1.5, 1.5] + [-0.2] * 20)
    ratio = np.array([0.4, 0.6] * 10 + [0.9, 0.9] + [0.8] * 20)
    t = fit_template(p, eta, ratio * p, p_edges=(0, 10, 100), eta_edges=(0, 1, 3), min_count=10)
    assert t.count == [[20, 2], [20, 0]]
    mean, std = t.lookup(np.array([5.0, 5.0, 50.0, 50.0, 500.0]), np.array([0.3, -2.0, 0.1, 2.9, 0.0]))
    row0 = np.mean(np.r_[[0.4, 0.6] * 10, 0.9, 0.9])  # the sparse bin takes the mean of its whole p row
    assert mean.tolist() == pytest.approx([0.5, row0, 0.8, 0.8, 0.8])  # p beyond the last edge: last bin
    assert std[0] == pytest.approx(0.1) and std[2] == pytest.approx(0.0, abs=1e-6)


def test_round_trip_through_a_dict():
    t = fit_template(np.array([1.0, 2.0]), np.array([0.0, 0.1]), np.array([0.5, 1.0]), min_count=1)
    back = EpTemplate.from_dict(t.to_dict())
    assert back == t
    assert back.lookup(np.array([1.5]), np.array([0.0]))[0][0] == pytest.approx(0.5)


def test_reference_energy_is_the_focal_share_of_measured_cell_energy():
    # sample 0: a track point (ignored), a cell of 2 GeV half focal, a cell of 1 GeV all focal, a noise cell
    # sample 1: one cell with no truth energy
    lists = {
        "point_type": [[1, 0, 0, 0], [0]],
        "energy": [[30.0, 2.0, 1.0, 0.3], [5.0]],
        "truth_focal": [[0.0, 0.9, 1.1, 0.0], [0.0]],
        "truth_total": [[0.0, 1.8, 1.1, 0.0], [0.0]],
    }
    table = pa.table(
        {k: pa.array(v, type=pa.list_(pa.float32() if k != "point_type" else pa.int8())) for k, v in lists.items()}
    )
    assert reference_energy(table).tolist() == pytest.approx([2.0 * 0.5 + 1.0, 0.0])
