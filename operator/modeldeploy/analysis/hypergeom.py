"""The hypergeometric upper tail, exact to about 1e-14 relative, without scipy.stats.

Fisher's exact test is this tail. scipy.stats would give it too, but importing it costs
the operator about 45 MB of resident memory (its distributions, optimizers, linear
algebra) for one function; scipy.special, which the analysis needs anyway, has no
hypergeometric distribution.

The probability of one table is computed in log space with Loader's saddle-point form
(C. Loader, "Fast and accurate computation of binomial probabilities", 2000): a binomial
probability is ``exp(stirlerr(n) - stirlerr(x) - stirlerr(n-x) - bd0(x, np) - bd0(n-x, nq))
/ sqrt(2 pi x (n-x) / n)``, and a hypergeometric one is a ratio of three binomial ones
taken at the same p. Unlike differences of ``lgamma`` (whose values near 1e7 at a million
requests carry absolute errors near 1e-9), every term stays small, so the relative error
does too. The tail is then summed from that point outward with the exact ratio of
neighbouring probabilities, stopping where the terms no longer change the sum.
"""

from __future__ import annotations

import math

_LOG_2PI = math.log(2 * math.pi)
#: Coefficients of Stirling's series for log n! (Abramowitz and Stegun 6.1.41): 1/12,
#: 1/360, 1/1260, 1/1680, 1/1188. Past n = 15 five terms leave an error below 1e-16.
_STIRLING = (1 / 12, 1 / 360, 1 / 1260, 1 / 1680, 1 / 1188)


def stirlerr(n: int) -> float:
    """log(n!) - log(sqrt(2 pi n) (n/e)^n): the error of Stirling's approximation."""
    if n <= 15:  # small: lgamma is exact to a few 1e-15 here
        return math.lgamma(n + 1) - 0.5 * (_LOG_2PI + math.log(n)) - n * math.log(n) + n
    s0, s1, s2, s3, s4 = _STIRLING
    nn = float(n) * n
    return (s0 - (s1 - (s2 - (s3 - s4 / nn) / nn) / nn) / nn) / n


def bd0(x: float, m: float) -> float:
    """x log(x/m) + m - x, without the cancellation of that formula when x is near m."""
    if abs(x - m) < 0.1 * (x + m):
        # With v = (x-m)/(x+m): the sum equals (x-m) v + 2x (v^3/3 + v^5/5 + ...).
        v = (x - m) / (x + m)
        s, term, j = (x - m) * v, 2 * x * v, 1
        while True:
            term *= v * v
            nxt = s + term / (2 * j + 1)
            if nxt == s:
                return s
            s, j = nxt, j + 1
    return x * math.log(x / m) + m - x


def log_binomial(x: int, n: int, p: float, q: float) -> float:
    """log of the Binomial(n, p) probability of x (q = 1 - p, given so it is exact)."""
    if x < 0 or x > n:
        return -math.inf
    if x == 0:
        return 0.0 if n == 0 else (-bd0(n, n * q) - n * p if p < 0.1 else n * math.log(q))
    if x == n:
        return -bd0(n, n * p) - n * q if q < 0.1 else n * math.log(p)
    lc = stirlerr(n) - stirlerr(x) - stirlerr(n - x) - bd0(x, n * p) - bd0(n - x, n * q)
    return lc - 0.5 * (_LOG_2PI + math.log(x) + math.log1p(-x / n))


def log_pmf(x: int, total: int, successes: int, draws: int) -> float:
    """log P(X = x) for X the successes among `draws` taken without replacement from
    `total` items of which `successes` are successes."""
    failures = total - successes
    p, q = draws / total, (total - draws) / total
    return (log_binomial(x, successes, p, q) + log_binomial(draws - x, failures, p, q)
            - log_binomial(draws, total, p, q))


def sf(x: int, total: int, successes: int, draws: int) -> float:
    """P(X >= x) for X as in `log_pmf` (scipy's ``hypergeom.sf(x - 1, total, successes, draws)``).

    Sums away from the mode, where the terms shrink: the tail itself when x lies above the
    mode, else the lower tail, subtracted from 1 (the answer is then near 1/2 or more, so
    nothing is lost). `total` must be positive.
    """
    failures = total - successes
    lo, hi = max(0, draws - failures), min(draws, successes)
    if x <= lo:
        return 1.0
    if x > hi:
        return 0.0
    mode = (draws + 1) * (successes + 1) // (total + 2)
    if x > mode:  # the upper tail itself; its terms shrink upward
        term = acc = 1.0
        for k in range(x, hi):
            term *= (successes - k) * (draws - k) / ((k + 1) * (failures - draws + k + 1))
            if acc + term == acc:
                break
            acc += term
        return min(1.0, math.exp(log_pmf(x, total, successes, draws)) * acc)
    term = acc = 1.0  # the lower tail, up to x - 1; its terms shrink downward
    for k in range(x - 1, lo, -1):
        term *= k * (failures - draws + k) / ((successes - k + 1) * (draws - k + 1))
        if acc + term == acc:
            break
        acc += term
    return min(1.0, max(0.0, 1.0 - math.exp(log_pmf(x - 1, total, successes, draws)) * acc))
