"""Pure statistics for comparing a candidate with its baseline.

Everything here works on the binned counts Prometheus can give us (histogram buckets,
per-class counters): no raw observations ever exist. Functions take plain numbers and
return plain numbers, so they are checked against scipy and hand-computed values. They use
scipy.special (the normal and chi-square tails scipy.stats calls too) and never import
scipy.stats, which would cost the operator about 45 MB of memory for four functions.

Choices, and why:

* Quantiles are computed exactly as PromQL's ``histogram_quantile`` does (linear
  interpolation inside the bucket), so the numbers in status match a Grafana panel.
* Two-proportion questions ("is the candidate's error rate / tail fraction higher?") use
  the one-sided Fisher exact test: error counts are often 0-5 per window, where the
  normal approximation is badly wrong, and the exact test needs no special case for a
  baseline with zero errors.
* Distribution shifts use the chi-square test of homogeneity (Pearson, no continuity
  correction) after merging sparse categories, plus an effect size (Jensen-Shannon
  distance or PSI) that big traffic cannot inflate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

from . import hypergeom

Buckets = Sequence[tuple[float, float]]
"""A classic Prometheus histogram: (upper bound ``le``, cumulative count) pairs."""


# --- histograms -----------------------------------------------------------------------

def normalise_buckets(buckets: Buckets) -> list[tuple[float, float]]:
    """Sorted by bound, duplicates summed, counts made monotonic: what PromQL does.

    Counts can be non-monotonic because ``increase()`` extrapolates each bucket series
    separately; PromQL repairs that (``ensureMonotonic``) and so do we, so that our
    quantile agrees with ``histogram_quantile`` on the same input.
    """
    merged: dict[float, float] = {}
    for le, count in buckets:
        merged[float(le)] = merged.get(float(le), 0.0) + float(count)
    out: list[tuple[float, float]] = []
    running = 0.0
    for le in sorted(merged):
        running = max(running, merged[le])
        out.append((le, running))
    return out


def histogram_total(buckets: Buckets) -> float:
    """The number of observations: the ``+Inf`` bucket (NaN if there is none)."""
    b = normalise_buckets(buckets)
    return b[-1][1] if b and math.isinf(b[-1][0]) else math.nan


def histogram_quantile(q: float, buckets: Buckets) -> float:
    """PromQL ``histogram_quantile(q, ...)`` for one classic histogram (Prometheus 2.x).

    Linear interpolation within the bucket that holds rank ``q * total``; the lowest
    bucket starts at 0; a rank in the ``+Inf`` bucket returns the highest finite bound.
    NaN without a ``+Inf`` bucket or without observations, as in PromQL.
    """
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    b = normalise_buckets(buckets)
    if len(b) < 2 or not math.isinf(b[-1][0]):
        return math.nan
    total = b[-1][1]
    if total == 0:
        return math.nan
    rank = q * total
    i = next(i for i, (_, c) in enumerate(b[:-1] + [(math.inf, math.inf)]) if c >= rank)
    if i == len(b) - 1:
        return b[-2][0]
    if i == 0 and b[0][0] <= 0:
        return b[0][0]
    start, below = (b[i - 1][0], b[i - 1][1]) if i > 0 else (0.0, 0.0)
    end, count = b[i][0], b[i][1] - below
    if count == 0:  # only when q == 0 and the lowest bucket is empty: Go's 0/0
        return math.nan
    return start + (end - start) * ((rank - below) / count)


def common_buckets(a: Buckets, b: Buckets) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Both histograms restricted to the bounds they share.

    Cumulative counts stay exact on any subset of bounds, so two histograms whose
    bucket layouts differ (a template mixing versions of an exporter) are still
    comparable on the common bounds; ``+Inf`` is always common.
    """
    na, nb = normalise_buckets(a), normalise_buckets(b)
    shared = {le for le, _ in na} & {le for le, _ in nb}
    return [x for x in na if x[0] in shared], [x for x in nb if x[0] in shared]


@dataclass(frozen=True)
class TailTest:
    """Is the candidate's upper tail heavier? Counts above one bucket bound."""

    threshold: float  # the bucket bound (seconds) the tails are counted above
    baseline_over: int
    baseline_n: int
    candidate_over: int
    candidate_n: int
    p_value: float


def tail_test(q: float, baseline: Buckets, candidate: Buckets) -> TailTest:
    """One-sided test that the candidate has more requests above the q-quantile region.

    The threshold is the lower bound of the bucket holding the *pooled* q-quantile, so
    that it is chosen without looking at which version each request came from: under
    "no difference" the split of the counts above it is still hypergeometric and the
    Fisher test stays exact. Counting above the bucket's lower bound (rather than at
    the interpolated quantile) uses only what the buckets really measured, and keeps
    more of the tail than the upper bound would, hence more power.
    """
    base, cand = common_buckets(baseline, candidate)
    nb, nc = int(round(base[-1][1])), int(round(cand[-1][1]))
    finite = [le for le, _ in base if not math.isinf(le)]
    if not finite or nb + nc == 0:
        return TailTest(math.nan, 0, nb, 0, nc, 1.0)
    pooled = [(le, cb + cc) for (le, cb), (_, cc) in zip(base, cand)]
    rank = q * pooled[-1][1]
    i = next((i for i, (_, c) in enumerate(pooled[:-1]) if c >= rank), len(finite))
    threshold = finite[max(i - 1, 0)] if i < len(finite) else finite[-1]
    below_b = dict(base)[threshold]
    below_c = dict(cand)[threshold]
    over_b, over_c = int(round(nb - below_b)), int(round(nc - below_c))
    return TailTest(threshold, over_b, nb, over_c, nc, fisher_greater(over_c, nc, over_b, nb))


def bucket_counts(buckets: Buckets) -> list[float]:
    """Per-bucket (non-cumulative) counts, lowest bucket first, ``+Inf`` last."""
    b = normalise_buckets(buckets)
    return [c - (b[i - 1][1] if i else 0.0) for i, (_, c) in enumerate(b)]


@dataclass(frozen=True)
class RankTest:
    """Mann-Whitney U of candidate against baseline on bucketed observations."""

    superiority: float  # P(candidate slower) + P(tie)/2; 0.5 means no difference
    z: float
    p_value: float  # one-sided: the candidate is stochastically larger


def mann_whitney_greater(baseline: Buckets, candidate: Buckets) -> RankTest:
    """One-sided Mann-Whitney U test, observations tied within a bucket.

    The same as ``scipy.stats.mannwhitneyu(candidate, baseline, alternative="greater",
    method="asymptotic")`` on the raw values rounded to their buckets (tie-corrected
    normal approximation with continuity correction), computed from counts alone. It
    uses every request, not only the slowest 1 %, which is what makes a uniform
    slow-down detectable at a few hundred requests per window.
    """
    base, cand = common_buckets(baseline, candidate)
    cb, cc = np.array(bucket_counts(base)), np.array(bucket_counts(cand))
    nb, nc = float(cb.sum()), float(cc.sum())
    if nb == 0 or nc == 0:
        return RankTest(0.5, 0.0, 1.0)
    below = np.concatenate([[0.0], np.cumsum(cb)[:-1]])
    u = float((cc * (below + 0.5 * cb)).sum())
    n = nb + nc
    ties = cb + cc
    var = nb * nc / 12.0 * ((n + 1) - float((ties**3 - ties).sum()) / (n * (n - 1)))
    if var <= 0:
        return RankTest(u / (nb * nc), 0.0, 1.0)
    z = (u - nb * nc / 2 - 0.5) / math.sqrt(var)
    return RankTest(u / (nb * nc), z, normal_sf(z))


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z, as scipy.stats' ``norm.sf`` computes it."""
    return float(special.ndtr(-z))


# --- proportions ----------------------------------------------------------------------

def fisher_greater(x1: int, n1: int, x2: int, n2: int) -> float:
    """One-sided Fisher exact p-value for "proportion 1 is greater than proportion 2".

    Equals ``scipy.stats.fisher_exact([[x1, n1-x1], [x2, n2-x2]], "greater")`` (closer to the
    exact value than scipy at a million requests: see `hypergeom`); written as the
    hypergeometric tail so it stays fast for the large counts busy services produce.
    """
    if n1 <= 0 or n2 <= 0:
        return 1.0
    total, successes = n1 + n2, x1 + x2
    return hypergeom.sf(x1, total, successes, n1)


def wilson_interval(x: float, n: float, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (good coverage at small n)."""
    if n <= 0:
        return (0.0, 1.0)
    z = float(special.ndtri(0.5 + confidence / 2))  # scipy.stats' norm.ppf
    p = x / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def newcombe_interval(x1: float, n1: float, x2: float, n2: float,
                      confidence: float = 0.95) -> tuple[float, float, float]:
    """Difference p1 - p2 and its Newcombe hybrid-score interval (Newcombe 1998, method 10).

    Chosen over the Wald interval because rewards near 0 or 1 and small samples are the
    normal case in an A/B test's first windows, where Wald's coverage collapses.
    Returns (difference, lower, upper).
    """
    l1, u1 = wilson_interval(x1, n1, confidence)
    l2, u2 = wilson_interval(x2, n2, confidence)
    p1, p2 = x1 / n1, x2 / n2
    d = p1 - p2
    lower = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return (d, lower, upper)


# --- distributions --------------------------------------------------------------------

@dataclass(frozen=True)
class Chi2:
    statistic: float
    dof: int
    p_value: float
    categories: int  # after merging sparse ones


def merge_sparse(a: Sequence[float], b: Sequence[float], min_expected: float = 5.0) -> tuple[list[float], list[float]]:
    """Merge categories whose expected count is below `min_expected` into one.

    Cochran's rule for the chi-square approximation; rare classes are pooled rather
    than dropped so that mass moving *into* a rare class still counts. Categories empty
    in both versions carry no information and are dropped.
    """
    a_arr, b_arr = np.asarray(a, float), np.asarray(b, float)
    na, nb = a_arr.sum(), b_arr.sum()
    keep, rest_a, rest_b = [], 0.0, 0.0
    for x, y in zip(a_arr, b_arr):
        col = x + y
        if col == 0:
            continue
        if min(na, nb) * col / (na + nb) < min_expected:
            rest_a, rest_b = rest_a + x, rest_b + y
        else:
            keep.append((x, y))
    if rest_a + rest_b > 0:
        if keep and min(na, nb) * (rest_a + rest_b) / (na + nb) < min_expected:
            # The pooled rest is still sparse: fold it into the smallest kept category.
            j = min(range(len(keep)), key=lambda k: keep[k][0] + keep[k][1])
            keep[j] = (keep[j][0] + rest_a, keep[j][1] + rest_b)
        else:
            keep.append((rest_a, rest_b))
    return [x for x, _ in keep], [y for _, y in keep]


def chi2_homogeneity(a: Sequence[float], b: Sequence[float], min_expected: float = 5.0) -> Chi2:
    """Pearson chi-square test that two count vectors come from one distribution.

    Same as ``scipy.stats.chi2_contingency([a, b], correction=False)`` after
    `merge_sparse`. Fewer than two categories left means nothing to compare: p = 1.
    """
    ma, mb = merge_sparse(a, b, min_expected)
    if len(ma) < 2 or sum(ma) == 0 or sum(mb) == 0:
        return Chi2(0.0, 0, 1.0, len(ma))
    table = np.array([ma, mb], float)
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    dof = len(ma) - 1
    return Chi2(statistic, dof, float(special.chdtrc(dof, statistic)), len(ma))


def _proportions(counts: Sequence[float]) -> np.ndarray:
    arr = np.asarray(counts, float)
    total = arr.sum()
    return arr / total if total > 0 else arr


def jensen_shannon(a: Sequence[float], b: Sequence[float]) -> float:
    """Jensen-Shannon *distance* (square root of the divergence, natural log).

    The convention of ``scipy.spatial.distance.jensenshannon`` and of common drift
    monitors (threshold 0.1), so a value here means the same as in a notebook; it lies in
    [0, sqrt(ln 2) ~ 0.833]. Symmetric and finite when a class is empty on one side,
    unlike KL divergence.
    """
    p, q = _proportions(a), _proportions(b)
    m = (p + q) / 2

    def kl(x: np.ndarray) -> float:
        nz = x > 0
        return float((x[nz] * np.log(x[nz] / m[nz])).sum())

    return math.sqrt(max(0.0, (kl(p) + kl(q)) / 2))


def psi(baseline: Sequence[float], candidate: Sequence[float], floor: float = 1e-4) -> float:
    """Population stability index, sum (c - b) * ln(c / b) over categories.

    Empty categories are floored at `floor` (a proportion), the usual convention;
    otherwise one class seen by only one version would make PSI infinite.
    """
    b = np.maximum(_proportions(baseline), floor)
    c = np.maximum(_proportions(candidate), floor)
    return float(((c - b) * np.log(c / b)).sum())
