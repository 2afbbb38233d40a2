"""How much slower is the candidate, from two histograms with coarse buckets?

The latency histograms of Seldon's executor have buckets 1.3x-2.5x apart. Any fixed
score per bucket (a bucket's middle, its rank) turns a slow-down into a staircase: a
version 30 % slower reads as anything from +22 % to +37 % (bucket middles, 1st-99th
percentile over the decision benchmark's latency distributions) depending on where the
latencies fall between the bounds, so a test against a 25 % tolerance could never fail
some +30 % candidates however long it ran (6.7 % of those distributions).

Here the histograms are treated as what they are, interval-censored observations, and a
two-sample location-shift model in log-latency is fitted by maximum likelihood (grouped
data, Fisher scoring): log latency of the baseline ~ N(mu, sigma^2), of the candidate
~ N(mu + delta, sigma^2). ``delta`` is the log of the slow-down: under it every quantile,
p99 included, is exp(delta) times the baseline's, which is what "25 % slower at p99" means
for a version that is uniformly slower. The lowest and the +Inf bucket are censored at one
end, not given an invented middle.

Its variance is the sandwich (Huber) estimate, so it stays right when latencies are not
lognormal; and when both versions have the same distribution, whatever its shape, the
symmetric fit's delta tends to 0, so the "no slow-down" test keeps its level without the
lognormal assumption. The lognormal shape matters only for reading delta as a ratio of
quantiles when there is a real difference (a tolerance).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

_LOG_SIGMA = (math.log(0.02), math.log(5.0))  # fits are kept inside: all-in-one-bucket data has no MLE
#: A weak prior on log sigma, N(log 0.5, 1): with requests in only two buckets the spread
#: and the location cannot both be read from the counts; the prior settles the spread (the
#: same for both versions, so identical versions still fit delta ~ 0) and is soon
#: outweighed when the requests spread over three buckets or more.
_PRIOR = (math.log(0.5), 1.0)
_PRIOR_INFO = np.diag([0.0, 0.0, 1.0 / _PRIOR[1] ** 2])


def _prior_grad(theta: np.ndarray) -> np.ndarray:
    return np.array([0.0, 0.0, (theta[2] - _PRIOR[0]) / _PRIOR[1] ** 2])


@dataclass(frozen=True)
class Shift:
    """The fitted log slow-down of the candidate and its (sandwich) variance."""

    delta: float
    var: float
    sigma: float
    model_var: float = math.nan  # the model's own (inverse-information) variance, for comparison
    sandwich_var: float = math.nan


def _log_prob(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """log(Phi(hi) - Phi(lo)), accurate in both tails (-inf for an empty interval)."""
    upper = lo > 0  # mirror the upper tail so the difference is of two small numbers
    a, b = np.where(upper, -hi, lo), np.where(upper, -lo, hi)
    la, lb = special.log_ndtr(a), special.log_ndtr(b)
    with np.errstate(divide="ignore"):
        return lb + np.log1p(-np.exp(np.minimum(la - lb, 0.0)))


def _pdf(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)  # 0 at +-inf


def _zphi(z: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(z), np.nan_to_num(z) * _pdf(z), 0.0)


def _per_bucket(edges: np.ndarray, mu: float, log_sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bucket: log probability, d/dmu and d/dlog(sigma) of it."""
    s = math.exp(log_sigma)
    lo, hi = (edges[:-1] - mu) / s, (edges[1:] - mu) / s
    lp = _log_prob(lo, hi)
    p = np.maximum(np.exp(lp), 1e-300)
    d_mu = (_pdf(lo) - _pdf(hi)) / (s * p)
    d_ls = (_zphi(lo) - _zphi(hi)) / p
    return lp, d_mu, d_ls


def _scores(edges: np.ndarray, theta: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per version: each bucket's score vector for theta = (mu, delta, log sigma) and log probability."""
    mu, delta, ls = theta
    out, lps = [], []
    for shift, is_c in ((0.0, 0.0), (delta, 1.0)):
        lp, d_mu, d_ls = _per_bucket(edges, mu + shift, ls)
        out.append(np.stack([d_mu, d_mu * is_c, d_ls], axis=1))
        lps.append(lp)
    return out, lps


def fit_shift(bounds: Sequence[float], baseline: Sequence[float], candidate: Sequence[float]) -> Shift:
    """Maximum-likelihood log slow-down from per-bucket counts (same bounds, +Inf last)."""
    edges = np.log(np.array([b for b in bounds[:-1]], dtype=float))
    edges = np.concatenate([[-math.inf], edges, [math.inf]])
    counts = [np.asarray(baseline, dtype=float), np.asarray(candidate, dtype=float)]
    mids = np.concatenate([[edges[1] - 0.35], 0.5 * (edges[1:-2] + edges[2:-1]), [edges[-2] + 0.35]])

    def mean(c: np.ndarray) -> float:
        return float((mids * c).sum() / max(c.sum(), 1e-9))

    pooled = counts[0] + counts[1]
    spread = math.sqrt(max(float((pooled * (mids - mean(pooled)) ** 2).sum() / max(pooled.sum(), 1e-9)), 0.09))
    # Each version's median is kept within one sigma of the histogram's finite bounds: one
    # with every request in an end bucket has no finite MLE ("somewhere beyond 10 s"), and
    # placing it just beyond the last bound understates its distance, the safe side for a
    # Fail; both versions there (identically broken) read as equal.
    def clip(t: np.ndarray) -> np.ndarray:
        ls = min(max(t[2], _LOG_SIGMA[0]), _LOG_SIGMA[1])
        lowest, highest = float(edges[1]) - math.exp(ls), float(edges[-2]) + math.exp(ls)
        mu = min(max(t[0], lowest), highest)
        return np.array([mu, min(max(t[1], lowest - mu), highest - mu), ls])

    theta = clip(np.array([mean(counts[0]), mean(counts[1]) - mean(counts[0]), math.log(spread)]))

    def evaluate(t: np.ndarray) -> tuple[float, list[np.ndarray], np.ndarray]:
        """Penalised log-likelihood, score vectors and the expected (Fisher) information."""
        g, lps = _scores(edges, t)
        value = float(sum((c * lp).sum() for c, lp in zip(counts, lps))) - 0.5 * ((t[2] - _PRIOR[0]) / _PRIOR[1]) ** 2
        # Grouped data: sum_j n p_j g_j g_j^T.
        info = sum(c.sum() * (np.exp(lp)[:, None, None] * gv[:, :, None] * gv[:, None, :]).sum(axis=0)
                   for c, lp, gv in zip(counts, lps, g))
        return value, g, info

    current, g, info = evaluate(theta)
    for _ in range(50):  # Fisher scoring, halving a step until the likelihood does not fall
        grad = sum((c[:, None] * gv).sum(axis=0) for c, gv in zip(counts, g)) - _prior_grad(theta)
        try:
            step = np.linalg.solve(info + _PRIOR_INFO, grad)
        except np.linalg.LinAlgError:
            break
        for _ in range(30):
            nxt = clip(theta + step)
            value, g_next, info_next = evaluate(nxt)
            if value >= current - 1e-12:
                break
            step = step / 2
        else:
            break
        done = abs(value - current) < 1e-9 and float(np.abs(nxt - theta).max()) < 1e-6
        theta, current, g, info = nxt, value, g_next, info_next
        if done:
            break
    # Sandwich: bread from the model's information, meat from the observed scores.
    meat = sum((c[:, None, None] * gv[:, :, None] * gv[:, None, :]).sum(axis=0) for c, gv in zip(counts, g))
    try:
        bread = np.linalg.inv(info + _PRIOR_INFO)
    except np.linalg.LinAlgError:
        return Shift(float(theta[1]), math.inf, math.exp(theta[2]))
    cov = bread @ meat @ bread
    # Never claim more than the model's own information: at a few dozen requests the
    # observed meat can be small by chance.
    var = max(float(cov[1, 1]), float(bread[1, 1]))
    if not math.isfinite(var) or var <= 0:
        var = math.inf
    return Shift(float(theta[1]), var, math.exp(theta[2]), float(bread[1, 1]), float(cov[1, 1]))
