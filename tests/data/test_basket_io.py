"""Baskets read straight from the file agree with uproot's own reading, for every compression the writer offers."""

from __future__ import annotations

import os

import awkward as ak
import numpy as np
import pytest
import uproot

from raypf.data.basket_io import BasketTable, read_baskets
from raypf.data.mltree import MLTreeError, read_columns, read_events
from raypf.simulate.rootio import write_root_file

N = 23  # events; baskets of 5 entries, so ranges start and end inside baskets


def _events(rng: np.random.Generator) -> dict:
    n_tracks, n_clusters = rng.integers(0, 3, N), rng.integers(0, 3, N)
    n_cells = rng.integers(0, 40, int(n_clusters.sum()))
    n_truth = rng.integers(0, 3, int(n_cells.sum()))
    ids = rng.integers(0, 2**64, int(n_cells.sum()), dtype=np.uint64)
    return {
        "eventNumber": ("Long64_t", np.arange(N) * 7 + 3),
        "nTrack": ("int", n_tracks),
        "trackPt": ("vector<float>", ak.unflatten(rng.random(int(n_tracks.sum())).astype(np.float32), n_tracks)),
        "nCluster": ("int", n_clusters),
        "cluster_cell_ID": ("vector<vector<size_t>>", ak.unflatten(ak.unflatten(ids, n_cells), n_clusters)),
        "cluster_cell_E": ("vector<vector<float>>", ak.unflatten(ak.unflatten(rng.integers(0, 4, len(ids)) / 4, n_cells), n_clusters)),
        "cluster_cell_hitsTruthE": (
            "vector<vector<vector<float>>>",
            ak.unflatten(ak.unflatten(ak.unflatten(rng.random(int(n_truth.sum())).astype(np.float32), n_truth), n_cells), n_clusters),
        ),
    }


def read_basket(fd: int, seek: int, nbytes: int):
    """One basket's entry bytes and entry offsets through ``read_baskets`` (None: a codec left to uproot)."""
    got = read_baskets(fd, np.array([seek]), np.array([nbytes]))
    if got is None:
        return None
    data, [(lo, hi, offsets)] = got
    return data[lo:hi], offsets


BRANCHES = ["eventNumber", "nTrack", "trackPt", "nCluster", "cluster_cell_ID", "cluster_cell_E", "cluster_cell_hitsTruthE"]


@pytest.mark.parametrize("compression", ["zstd", "zlib", "none", "lz4", "lzma"])
def test_every_range_reads_as_uproot_reads_it(tmp_path, compression):
    path = tmp_path / f"{compression}.root"
    write_root_file(path, {"EventTree": _events(np.random.default_rng(5))}, compression=compression, basket_entries=5)
    raw, compressed = 0, 0
    with uproot.open(path) as f:
        tree = f["EventTree"]
        expected = {b: tree[b].array(library="ak") for b in BRANCHES}
        assert list(BasketTable(tree["cluster_cell_ID"]).entry) == [0, 5, 10, 15, 20, 23]
        fd = os.open(path, os.O_RDONLY)
        try:
            for b in BRANCHES:
                table = BasketTable(tree[b])
                assert table.complete
                for i in range(len(table.seek)):
                    got = read_basket(fd, int(table.seek[i]), int(table.nbytes[i]))
                    basket = tree[b].basket(i)
                    compressed += basket.compressed_bytes != basket.uncompressed_bytes
                    if got is None:
                        continue
                    raw += 1
                    assert np.array_equal(got[0], basket.data)
                    assert (got[1] is None and basket.byte_offsets is None) or np.array_equal(got[1], basket.byte_offsets)
        finally:
            os.close(fd)
    assert (compressed == 0) == (compression == "none")
    assert raw == 5 * len(BRANCHES) if compression in ("zstd", "zlib", "none") else raw < 5 * len(BRANCHES)  # lz4, lzma: uproot
    for start, stop in [(0, N), (3, 4), (4, 11), (5, 10), (9, 23), (22, 23)]:
        events = read_events(str(path), BRANCHES, start, stop)
        for b in BRANCHES:
            assert ak.to_list(events[b]) == ak.to_list(expected[b][start:stop]), (compression, b, start, stop)
    table = BasketTable(uproot.open(path)["EventTree"]["cluster_cell_ID"])
    assert table.overlapping(4, 11) == range(3) and table.overlapping(5, 10) == range(1, 2) and table.overlapping(7, 7) == range(1, 1)


def test_a_basket_of_several_compression_blocks(tmp_path):
    """ROOT compresses a basket in blocks of at most 16 MiB each; a basket over that has several."""
    values = np.arange(2_200_000, dtype=np.float64)  # 17.6 MB in one entry
    path = tmp_path / "big.root"
    write_root_file(path, {"EventTree": {"trackPt": ("vector<double>", ak.Array([values, values[:3]]))}}, compression="zstd")
    col = read_columns(str(path), ["trackPt"])["trackPt"]
    assert col.values.dtype == np.float32 and list(col.offsets[0]) == [0, len(values), len(values) + 3]
    assert np.array_equal(col.values[: len(values)], values.astype(np.float32))


def test_damaged_baskets_name_the_file_and_branch(tmp_path):
    path = tmp_path / "damaged.root"
    write_root_file(path, {"EventTree": _events(np.random.default_rng(6))}, compression="zstd", basket_entries=5)
    with uproot.open(path) as f:
        table = BasketTable(f["EventTree"]["trackPt"])
    seek, nbytes = int(table.seek[2]), int(table.nbytes[2])
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(ValueError, match="truncated"):
            read_basket(fd, os.path.getsize(path) - nbytes // 2, nbytes)
    finally:
        os.close(fd)
    raw = bytearray(path.read_bytes())
    raw[seek + nbytes - 8 : seek + nbytes] = b"\xff" * 8  # the end of the compressed stream
    damaged = tmp_path / "damaged2.root"
    damaged.write_bytes(bytes(raw))
    with pytest.raises(MLTreeError, match=r"damaged2\.root: branch 'trackPt'"):
        read_columns(str(damaged), ["trackPt"], 10, 15)
