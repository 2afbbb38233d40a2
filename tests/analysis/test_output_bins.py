"""A regressor's bins from the stable version's outputs: labels parsed, edges of roughly
equal stable mass cut on the counted bins' own edges, both versions merged exactly."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
from modeldeploy.analysis.output_bins import BIN_COUNT, bin_labels, choose_edges, interval, merge

R20 = (1.0, 1.12, 1.25, 1.4, 1.6, 1.8, 2.0, 2.24, 2.5, 2.8, 3.15, 3.55, 4.0, 4.5, 5.0, 5.6, 6.3, 7.1, 8.0, 9.0)


def grid() -> list[float]:
    """The monitor's fine grid as its docstring states it (model_server/modelserver/monitor.py):
    the R20 preferred numbers x 10^e, e from -9 to 11, and 1e12."""
    return [float(f"{m}e{e}") for e in range(-9, 12) for m in R20] + [1e12]


def fine_label(x: float, edges: list[float]) -> str:
    """A positive value's fine bin in the monitor's notation (integers printed as such)."""
    def show(v: float) -> str:
        return str(int(v)) if v.is_integer() else repr(v)

    i = max(j for j, e in enumerate(edges) if e <= x)
    return f"[{show(edges[i])},{show(edges[i + 1])})"


def fine_counts(values: list[float]) -> dict[str, float]:
    edges = grid()
    return {k: float(n) for k, n in Counter(fine_label(v, edges) for v in values).items()}


@pytest.mark.parametrize(("label", "expected"), [
    ("[1,1.06)", (1.0, 1.06)),
    ("[1e-09,1.06e-09)", (1e-9, 1.06e-9)),
    ("[-1.06,-1)", (-1.06, -1.0)),
    ("(-inf,-1000000000000)", (-math.inf, -1e12)),
    ("[1000000000000,+inf)", (1e12, math.inf)),
    ("(-inf,100)", (-math.inf, 100.0)),
    ("[-1e-09,1e-09)", (-1e-9, 1e-9)),
    ("NaN", None), ("7", None), ("cat", None), ("[2,1)", None), ("[1,2]", None), ("[a,b)", None),
])
def test_labels_are_parsed_as_intervals(label: str, expected: tuple[float, float] | None) -> None:
    assert interval(label) == expected


def test_deciles_of_the_stable_outputs_are_cut_on_the_fine_grid() -> None:
    rng = random.Random(1)
    stable = [rng.gauss(150, 50) for _ in range(5000)]
    stable = [v for v in stable if v > 1]
    counts = fine_counts(stable)
    edges = choose_edges(counts)
    assert BIN_COUNT - 3 <= len(edges) <= BIN_COUNT - 1, edges
    assert set(edges) <= set(grid()), "every edge is an edge of the fine grid: merging is exact"
    merged = merge(counts, edges)
    assert sum(merged.values()) == len(stable)
    # A cut falls on a fine bin's edge, so a bin's share is off a tenth by at most the
    # largest fine bin's share (20 fine bins per decade: [140,160) holds 16 % here).
    widest = max(counts.values()) / len(stable)
    assert all(abs(n / len(stable) - 0.1) <= widest for n in merged.values()), merged
    # Merging is exact: the fine bins merged equal the coarse bins counted directly.
    direct = Counter(bin_labels(edges)[sum(1 for e in edges if e <= v)] for v in stable)
    assert merged == {k: float(n) for k, n in direct.items()}


def test_both_versions_are_merged_into_the_same_bins_and_a_drift_lands_in_the_top_ones() -> None:
    rng = random.Random(2)
    stable = fine_counts([max(2.0, rng.gauss(150, 50)) for _ in range(3000)])
    drifted = fine_counts([max(2.0, 1.5 * rng.gauss(150, 50)) for _ in range(3000)])
    edges = choose_edges(stable)
    base, cand = merge(stable, edges), merge(drifted, edges)
    labels = bin_labels(edges)
    assert set(base) | set(cand) <= set(labels)
    top = labels[-1]
    assert cand[top] / 3000 > 3 * base[top] / 3000


def test_negative_values_nan_and_labels_that_are_no_bins() -> None:
    counts = {"[-1.06,-1)": 50.0, "[-1e-09,1e-09)": 50.0, "[1,1.06)": 50.0, "[2,2.11)": 50.0, "NaN": 7.0}
    edges = choose_edges(counts, k=4)
    assert edges == (-1.0, 1e-9, 1.06)
    merged = merge({**counts, "cat": 3.0}, edges)
    assert merged == {"(-inf,-1)": 50.0, "[-1,1e-09)": 50.0, "[1e-09,1.06)": 50.0, "[1.06,+inf)": 50.0,
                      "NaN": 7.0, "cat": 3.0}


def test_few_or_concentrated_outputs_give_fewer_bins() -> None:
    assert choose_edges({}) == ()
    assert choose_edges({"NaN": 500.0}) == ()
    # All in one bin: its own bounds, so a move out of it shows.
    assert choose_edges({"[150,158)": 500.0}) == (150.0, 158.0)
    # 90 % in one bin: the cuts that would fall inside it coincide.
    edges = choose_edges({"[100,106)": 50.0, "[150,158)": 900.0, "[200,211)": 50.0})
    assert edges == (106.0, 158.0)


def test_spec_bins_merge_as_the_identity() -> None:
    edges = (100.0, 150.0, 200.0)
    counts = {"(-inf,100)": 3.0, "[100,150)": 4.0, "[150,200)": 5.0, "[200,+inf)": 6.0, "NaN": 1.0}
    assert merge(counts, edges) == counts
