"""A regressor's output bins when the spec gives none: fixed at the rollout's start from
the stable version's outputs, the same for both versions.

Why this design. Bins have to be known where the values are counted, and what gets
counted lands in Prometheus as counters that cannot be re-binned afterwards. Fixing the
edges at rollout start and pushing them to the monitors would change the stable
predictor's monitor (a restart of a node serving all users) in the middle of a rollout,
and its counts from before the change would be in other bins. So instead every monitor
counts a regressor without `bins` on one fine, fixed, scale-free grid (20 log-spaced bins
per decade, mirrored below zero: model_server/modelserver/monitor.py), whatever the
version, and the coarse bins are a matter of merging at query time:

1. at the first analysis of a rollout, the operator reads the stable version's fine
   counts over the hour before the rollout began (`REFERENCE_LOOKBACK`) and cuts them
   into `BIN_COUNT` bins of roughly equal stable mass (deciles, the usual binning of a
   population-stability check) *on the grid's own edges*, so merging is exact;
2. the edges go into `status.outputBins` and stay fixed for the rollout (a restarted
   operator, or Prometheus dropping old data, does not move them);
3. each analysis merges both versions' fine counts into those edges, and the output
   check compares the merged counts exactly as it compares a classifier's classes.

The reference data precede the rollout, so the bins do not depend on the data the check
then tests. Only when the stable version served fewer than `MIN_REFERENCE` outputs in
that hour (a model deployed moments before its first rollout) is the reference extended
up to the first analysis, which reuses some of the tested baseline data; equal-mass bins
from the baseline make its counts more even than chance, the conservative side for a
test of "same distribution". Spec bins, when given, win: the monitors count in them
and the merge is the identity.

Labels are the monitor's interval notation, `[a,b)`, `(-inf,b)`, `[a,+inf)` and `NaN`;
the grid itself is the monitor's business (nothing here depends on its spacing), so any
interval labels merge, coarse ones included.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime, timedelta

from ..providers import MetricProvider, MetricQueryError, NoData
from ..state import OutputBins, iso
from ..verdicts import CheckResult, Outcome
from .query import QuerySession, Target
from .templates import CLASS_LABEL, format_duration

#: How many bins of roughly equal stable mass (deciles).
BIN_COUNT = 10
#: Stable outputs needed before the bins are fixed (20 per decile).
MIN_REFERENCE = 200
#: How far back before the rollout's start the stable version's outputs are read.
REFERENCE_LOOKBACK = timedelta(hours=1)
NAN = "NaN"
_NUMBER = r"[-+]?(?:\d+\.?\d*(?:e[-+]?\d+)?|\d*\.\d+(?:e[-+]?\d+)?)"
_INTERVAL = re.compile(rf"^(?:\[({_NUMBER})|\(-inf),(?:({_NUMBER})\)|\+inf\))$")


def interval(label: str) -> tuple[float, float] | None:
    """(low, high) of a bin label; None for NaN and for labels that are not bins."""
    m = _INTERVAL.match(label)
    if not m:
        return None
    low = float(m.group(1)) if m.group(1) is not None else -math.inf
    high = float(m.group(2)) if m.group(2) is not None else math.inf
    return (low, high) if low < high else None


def _edge(x: float) -> str:
    """As the monitor prints an edge: an integer when integral."""
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


def bin_labels(edges: tuple[float, ...]) -> tuple[str, ...]:
    """(-inf,e0), [e0,e1), ..., [ek,+inf): the monitor's notation for the same edges."""
    e = [_edge(x) for x in edges]
    return (f"(-inf,{e[0]})", *(f"[{a},{b})" for a, b in zip(e, e[1:])), f"[{e[-1]},+inf)")


def choose_edges(counts: Mapping[str, float], k: int = BIN_COUNT) -> tuple[float, ...]:
    """Up to k - 1 edges cutting the counted bins into k of roughly equal mass.

    Each edge is the upper bound of a counted bin (so a merge never splits one): for each
    j/k of the mass, the cut after the bin whose cumulative mass is nearest. Cuts that
    coincide are kept once, so mass piled in a few bins gives fewer, unequal bins. With
    everything in one bin, its own bounds: a shift out of it still shows.
    """
    bins = sorted((iv, n) for label, n in counts.items() if n > 0 and (iv := interval(label)) is not None)
    total = sum(n for _, n in bins)
    if not bins:
        return ()
    cumulative, cuts = 0.0, []
    for (_, high), n in bins[:-1]:
        cumulative += n
        cuts.append((cumulative, high))
    edges: set[float] = set()
    for j in range(1, k):
        if cuts:
            edges.add(min(cuts, key=lambda c: abs(c[0] - j * total / k))[1])
    if not edges:
        low, high = bins[0][0]
        edges = {x for x in (low, high) if math.isfinite(x)}
    return tuple(sorted(edges))


def merge(counts: Mapping[str, float], edges: tuple[float, ...]) -> dict[str, float]:
    """Counts of bin labels summed into the bins of `edges` (by each bin's lower bound,
    exact when the edges are edges of the counted bins). NaN stays NaN; a label that is
    no bin (a classifier's class) is kept as it is, so it is compared, never dropped."""
    labels = bin_labels(edges)
    out: dict[str, float] = {}
    for label, n in counts.items():
        iv = interval(label)
        if iv is None:
            key = label
        else:
            key = labels[sum(1 for e in edges if e <= iv[0])]
        out[key] = out.get(key, 0.0) + n
    return out


def pending(name: str, baseline: Mapping[str, float], candidate: Mapping[str, float], method: str | None) -> CheckResult:
    """Inconclusive until the bins are fixed (with the sequential method: still collecting)."""
    nb, nc = int(round(sum(baseline.values()))), int(round(sum(candidate.values())))
    return CheckResult(name, Outcome.INCONCLUSIVE,
                       f"collecting: the regressor's bins are fixed from {MIN_REFERENCE} outputs of the stable "
                       f"version (it served {nb} since the rollout began); spec.model.output.bins would fix them now",
                       n_baseline=nb, n_candidate=nc, method=method)


def fix_bins(provider: MetricProvider, outputs_template: str, target: Target, stable_version: str,
             rollout_started: datetime, now: datetime) -> OutputBins | None:
    """The stable version's bins from its outputs in the `REFERENCE_LOOKBACK` before the
    rollout began, or, with fewer than `MIN_REFERENCE` there, up to `now`. None while
    there are still fewer, or when Prometheus cannot say (asked again next analysis)."""
    start = rollout_started - REFERENCE_LOOKBACK
    for until in (rollout_started, now):
        window = format_duration(max(1, int((until - start).total_seconds())))
        session = QuerySession(provider, Target(target.namespace, target.deployment, target.baseline,
                                                target.candidate, window).validated(window), until.timestamp())
        try:
            counts = session.by(outputs_template, target.baseline, CLASS_LABEL)
        except NoData:
            counts = {}
        except MetricQueryError:
            return None
        seen = sum(n for label, n in counts.items() if interval(label) is not None)
        if seen >= MIN_REFERENCE:
            return OutputBins(choose_edges(counts), stable_version, int(round(seen)), iso(start), iso(until))
    return None
