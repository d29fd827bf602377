"""Scores of the model and the baselines on constructed cell tables with answers worked out by hand."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from raypf.evaluate.scores import Scoreboard, markdown_table, sample_sums, table_rows


def _cells(entry, track, true_class, pred_class, energy, truth_focal, nearest, pf) -> pa.Table:
    n = len(entry)
    return pa.table(
        {
            "entry": np.asarray(entry, dtype=np.int64),
            "track_index": np.asarray(track, dtype=np.int16),
            "true_class": np.asarray(true_class, dtype=np.int8),
            "pred_class": np.asarray(pred_class, dtype=np.int8),
            "pred_fraction": (np.asarray(pred_class) == 1).astype(np.float32),
            "energy": np.asarray(energy, dtype=np.float32),
            "truth_focal": np.asarray(truth_focal, dtype=np.float32),
            "nearest_focal": np.asarray(nearest, dtype=bool),
            "pf_fraction": np.asarray(pf, dtype=np.float32),
            "score": np.linspace(0, 1, n, dtype=np.float32),
        }
    )


# two samples: (entry 0, track 0) with 4 cells, (entry 0, track 1) with 2 cells
CELLS = _cells(
    entry=[0, 0, 0, 0, 0, 0],
    track=[0, 0, 0, 0, 1, 1],
    true_class=[1, 1, 0, 0, 1, 0],
    pred_class=[1, 0, 1, 0, 1, 0],
    energy=[4.0, 2.0, 1.0, -0.5, 3.0, 1.0],
    truth_focal=[4.0, 1.5, 0.0, 0.0, 2.0, 0.0],
    nearest=[1, 1, 1, 1, 0, 0],
    pf=[1.0, 0.25, 0.0, 0.0, 0.5, 0.6],
)


def test_sample_sums_group_consecutive_rows_of_one_track():
    starts, sums = sample_sums(CELLS, {"e": CELLS.column("energy").to_numpy().astype(np.float64)})
    assert starts.tolist() == [0, 4]
    assert sums["e"].tolist() == [6.5, 4.0]


def test_model_and_event_baselines_against_hand_counts():
    board = Scoreboard(2, np.array([0.75, 0.25]))
    board.add("rho", CELLS)
    r = board.result()["rho"]
    # model: TP cells 0 and 4, FP cell 2, FN cell 1, TN cells 3 and 5
    m = r["model"]
    assert m["confusion"] == [[2, 1], [1, 2]]
    assert (
        m["precision"] == pytest.approx(2 / 3)
        and m["recall"] == pytest.approx(2 / 3)
        and m["f1"] == pytest.approx(2 / 3)
    )
    assert m["accuracy"] == pytest.approx(4 / 6)
    # energy weights max(E, 0): correct cells 0 (4), 3 (0), 4 (3), 5 (1) of 4 + 2 + 1 + 0 + 3 + 1 = 11
    assert m["energy_weighted_accuracy"] == pytest.approx(8 / 11)
    # per-sample response: predicted focal energy / truth: sample 0: (4 + 1) / 5.5, sample 1: 3 / 2
    assert m["samples"] == 2
    assert m["response_median"] == pytest.approx(np.median([5 / 5.5, 3 / 2]))
    # nearest track: focal on cells 0-3 -> TP 0, 1; FP 2, 3; FN 4; TN 5
    n = r["nearest_track"]
    assert n["confusion"] == [[1, 2], [1, 2]]
    assert n["f1"] == pytest.approx(2 * 2 / (2 * 2 + 2 + 1))
    # particle flow: a cell is the track's when it took >= half of it: cells 0, 4, 5 -> TP 0, 4; FP 5; FN 1
    p = r["particle_flow"]
    assert p["confusion"] == [[2, 1], [1, 2]]
    # its energy is the subtracted energy: sample 0: 4 + 0.5 = 4.5 of 5.5; sample 1: 1.5 + 0.6 = 2.1 of 2
    assert p["response_median"] == pytest.approx(np.median([4.5 / 5.5, 2.1 / 2]))


def test_expected_baselines_use_the_training_proportions():
    board = Scoreboard(2, np.array([0.75, 0.25]))
    board.add("rho", CELLS)
    r = board.result()["rho"]
    # 3 true focal, 3 not; smart random calls a cell focal with p = 0.25 whatever it is
    smart = r["smart_random"]
    assert smart["precision"] == pytest.approx(0.5)
    assert smart["recall"] == pytest.approx(0.25)
    assert smart["f1"] == pytest.approx(2 * 0.5 * 0.25 / 0.75)
    assert r["dumb"]["f1"] == 0.0 and r["dumb"]["accuracy"] == pytest.approx(0.5)
    assert r["random"]["recall"] == pytest.approx(0.5)


def test_groups_add_up_their_sets():
    board = Scoreboard(2, np.array([0.75, 0.25]))
    board.add("rho", CELLS)
    board.add("delta", CELLS)
    board.add("JZ2", CELLS)
    result = board.result()
    assert set(result) == {"rho", "delta", "JZ2", "rho+delta", "all"}  # "JZ" needs two JZ sets
    assert result["rho+delta"]["model"]["confusion"] == [[4, 2], [2, 4]]
    assert result["all"]["model"]["cells"] == 18
    assert result["all"]["particle_flow"]["samples"] == 6


def test_three_class_model_is_scored_on_focal_vs_rest_and_natively():
    cells = CELLS.set_column(2, "true_class", pa.array(np.array([1, 1, 2, 0, 1, 2], dtype=np.int8)))
    cells = cells.set_column(3, "pred_class", pa.array(np.array([1, 0, 2, 2, 1, 0], dtype=np.int8)))
    cells = cells.set_column(4, "pred_fraction", pa.array(np.array([1, 0, 0, 0, 1, 0], dtype=np.float32)))
    board = Scoreboard(3, np.array([0.5, 0.25, 0.25]))
    board.add("rho", cells)
    r = board.result()["rho"]
    assert r["model"]["native"]["confusion"] == [[0, 0, 1], [1, 2, 0], [1, 0, 1]]
    # focal F1 is the same question either way: TP cells 0 and 4, FN cell 1, no FP
    assert r["model"]["f1"] == pytest.approx(0.8) == r["model"]["native"]["f1"]


def test_table_orders_methods_and_renders():
    board = Scoreboard(2, np.array([0.75, 0.25]))
    board.add("rho", CELLS)
    rows = table_rows(board.result(), "PointNet")
    assert [r["method"] for r in rows] == [
        "PointNet", "particle flow (rule-based)", "nearest track", "smart random", "random", "dumb",
    ]  # fmt: skip
    text = markdown_table(rows)
    assert text.splitlines()[2].startswith("| rho | PointNet | 0.667 |")
    assert "| rho | smart random | 0.333 |" in text and text.count("\n") == len(rows) + 1
