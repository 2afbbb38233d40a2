"""Anytime-valid statistics: confidence sequences and e-values on cumulative counts.

The classical tests in `stats` are valid for one look at one window. A canary is looked
at every interval, and a test re-run at every look fails an identical candidate with a
probability that grows with the number of looks. Everything here is instead valid
*uniformly over time*: a confidence sequence (CS) at level alpha covers the true effect at
every look simultaneously with probability >= 1 - alpha (Howard, Ramdas, McAuliffe &
Sekhon 2021; Ville's inequality), so "fail when the CS lies above the margin" has a
false-fail probability <= alpha however many looks are taken and whenever we stop.

Every function takes counts accumulated since a start time (Prometheus counters are
cumulative, so that is one query per look) and none needs the order of the events: the
boundaries are mixture martingales, which depend on the data only through sufficient
statistics.

Mostly two-sample: each version's outcomes are modelled as i.i.d. draws from that
version's own distribution, and which version served a request (the routing share) never
enters the likelihood. That is what lets evidence accumulate across traffic steps whose
weights differ. The price is the stationarity assumption: each version's error rate,
latency and output distribution must not drift during the rollout (minutes), and requests
must be independent of one another given the version. The one exception, the share of
errors, conditions on the routing share and so is used within one step only.

Methods:

* `beta_binomial_cs` - a proportion (error rate, reward rate): the conjugate mixture
  martingale of Robbins (1970), a Beta prior (Jeffreys, or one expecting rare events): for each p0 the ratio of the
  beta-binomial marginal likelihood to the binomial likelihood at p0 is a nonnegative
  martingale with mean 1 under p0, so {p0 : ratio < 1/alpha} is a CS. Exact, no normal
  approximation: right for error counts of 0-5.
* `difference_cs` - p_candidate - p_baseline from two independent beta-binomial CSs at
  alpha/2 each (union bound). Conservative, valid at any n.
* `ratio_mixture_log_e_above` - a test on the *share of errors* that came from the
  candidate, given the routing share: the error check's failure test (Lindon & Malek
  2022, "Anytime-valid inference for multinomial count data": conditioning on the events
  removes the unknown baseline rate, which is what makes rare errors detectable within
  ~100 requests), its alternatives mixed over ratios of the two error rates.
* `normal_mixture` - the difference of two means with estimated variances: the Gaussian
  mixture boundary (Robbins 1970; Howard et al. 2021 eq. 14) applied to the difference
  estimate, as in the mixture SPRT of Johari, Koomen, Pekelis & Walsh ("Always valid
  inference", 2017/2022). Asymptotically valid (Waudby-Smith et al. 2021, "Time-uniform
  central limit theory"); used for class shares (bounded, so the normal approximation is
  good after a few dozen observations) and, through `mixture_radius` and
  `one_sided_log_e`, for the latency slow-down fitted by `binned.fit_shift` (an
  asymptotically normal estimate with its sandwich variance). Its type-I error under
  continuous monitoring is checked by a seeded test.
* `average_e` - the average of e-values with fixed weights is an e-value (Vovk & Wang
  2021), used to watch every output class at once for the cost of log(K).

Decisions against a margin (non-inferiority, Wellek 2010): with the effect d (candidate
minus baseline, "larger is worse") and a tolerated increase m, the check *fails* when the
CS at level alpha lies entirely above m (harm beyond the tolerance is shown) and *passes*
when the CS at level beta lies entirely below m (non-inferiority is shown). Between the
two it keeps collecting: more data shrinks the CS, so unless d sits exactly on m one side
is eventually reached; low traffic only makes that slower.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from scipy import special

#: Jeffreys Beta(1/2, 1/2): the default mixing prior, minimax-regret for Bernoulli data.
JEFFREYS = (0.5, 0.5)
#: For error rates: Beta(1/2, 20), mean 2.4 %. Any fixed prior gives a valid CS; one that
#: expects small rates makes the upper bound at 0-2 errors in a hundred requests about half
#: as wide as Jeffreys', which is what lets a step show "at most 2 points higher" quickly.
RARE = (0.5, 20.0)


def _log_marginal(x: float, n: float, prior: tuple[float, float]) -> float:
    """log of the beta-binomial marginal likelihood of a sequence with x successes in n."""
    a, b = prior
    return (math.lgamma(a + x) + math.lgamma(b + n - x) - math.lgamma(a + b + n)
            - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)))


def beta_binomial_log_e(x: float, n: float, p0: float, prior: tuple[float, float] = JEFFREYS) -> float:
    """log e-value against "the success probability is p0" (a martingale under p0)."""
    if p0 <= 0.0:
        return math.inf if x > 0 else _log_marginal(x, n, prior)
    if p0 >= 1.0:
        return math.inf if x < n else _log_marginal(x, n, prior)
    return _log_marginal(x, n, prior) - x * math.log(p0) - (n - x) * math.log1p(-p0)


def _bisect(inside: float, out: float, outside: Callable[[float], bool]) -> float:
    """The boundary between `inside` (not rejected) and `out` (rejected), to 1e-7."""
    for _ in range(50):
        mid = 0.5 * (inside + out)
        if outside(mid):
            out = mid
        else:
            inside = mid
        if abs(out - inside) < 1e-7:
            break
    return inside


def beta_binomial_cs(x: float, n: float, alpha: float, prior: tuple[float, float] = JEFFREYS) -> tuple[float, float]:
    """(lower, upper): a 1 - alpha confidence sequence for a proportion at x of n.

    The set {p0 : e(p0) < 1/alpha}; log e(p0) is convex in p0 with its minimum at x/n, so
    each end is found by bisection. With n = 0 the interval is [0, 1].
    """
    if n <= 0:
        return 0.0, 1.0
    x = min(max(x, 0.0), n)
    level = math.log(1.0 / alpha)
    centre = x / n

    def outside(p: float) -> bool:
        return beta_binomial_log_e(x, n, p, prior) >= level

    lo = 0.0 if not outside(0.0) else _bisect(centre, 0.0, outside)
    hi = 1.0 if not outside(1.0) else _bisect(centre, 1.0, outside)
    return lo, hi


def beta_binomial_log_e_above(x: float, n: float, p0: float, prior: tuple[float, float] = JEFFREYS) -> float:
    """log e-value against "the success probability is at most p0" (one-sided).

    The prior restricted to (p0, 1]: every likelihood ratio against p0 with p > p0 is a
    supermartingale whenever the true probability is <= p0, so their mixture is too. It
    spends nothing on alternatives below p0, which buys up to log 2 over `beta_binomial_log_e`.
    """
    if n <= 0 or p0 >= 1.0:
        return 0.0
    if p0 <= 0.0:
        return beta_binomial_log_e(x, n, p0, prior)
    a, b = prior
    tail = float(special.betainc(a + x, b + n - x, p0))
    prior_tail = float(special.betainc(a, b, p0))
    if tail >= 1.0:
        return -math.inf
    return (_log_marginal(x, n, prior) + math.log1p(-tail) - math.log1p(-prior_tail)
            - x * math.log(p0) - (n - x) * math.log1p(-p0))


#: The error check's alternatives: the candidate's error rate 2 to 32 times the baseline's,
#: log-spaced, equal weights. A regression of an error rate is a ratio, and the share of
#: errors it gives the candidate depends on the routing share; a prior on that share
#: (Jeffreys restricted above the null) puts its mass near "every error is the candidate's",
#: which a 10x regression at 10 % of traffic (share 0.53) never approaches. At 10 % of
#: 20 req/s the grid's median to a Fail of 10x is 140 candidate requests against Jeffreys'
#: 166, and 2x and 3x fail sooner too (`benchmarks/error_share_priors.py`).
ERROR_RATIOS = tuple(2.0 * 16.0 ** (i / 5) for i in range(6))


def ratio_mixture_log_e_above(x: float, n: float, p0: float, ratios: Sequence[float] = ERROR_RATIOS) -> float:
    """log e-value against "the success probability is at most p0", for alternatives whose
    odds are `ratios` (each > 1) times p0's: the equal-weight average of their likelihood
    ratios. Each is a supermartingale whenever the true probability is <= p0 (its mean per
    trial increases in the probability and is 1 at p0), so the average is too.

    For the share of errors theta = w p_c / (w p_c + (1 - w) p_b) the odds are
    (p_c / p_b) * w / (1 - w): odds k times the null's are "the candidate's rate k times".
    """
    if n <= 0 or p0 >= 1.0:
        return 0.0
    if p0 <= 0.0:
        return math.inf if x > 0 else 0.0
    odds0 = p0 / (1 - p0)
    logs = []
    for k in ratios:
        p1 = k * odds0 / (1 + k * odds0)
        logs.append(x * math.log(p1 / p0) + (n - x) * (math.log1p(-p1) - math.log1p(-p0)))
    return average_e(logs)


def beta_binomial_log_e_below(x: float, n: float, p0: float, prior: tuple[float, float] = RARE) -> float:
    """log e-value against "the success probability is at least p0" (one-sided, the mirror
    of `beta_binomial_log_e_above`: the prior restricted to [0, p0))."""
    if n <= 0 or p0 <= 0.0:
        return 0.0
    if p0 >= 1.0:
        return math.inf if x < n else 0.0
    a, b = prior
    head = float(special.betainc(a + x, b + n - x, p0))
    prior_head = float(special.betainc(a, b, p0))
    if head <= 0.0:
        return -math.inf
    return (_log_marginal(x, n, prior) + math.log(head) - math.log(prior_head)
            - x * math.log(p0) - (n - x) * math.log1p(-p0))


def upper_bound(x: float, n: float, alpha: float, prior: tuple[float, float] = RARE) -> float:
    """One-sided 1 - alpha upper confidence sequence for a proportion (1 with no data)."""
    if n <= 0:
        return 1.0
    x = min(max(x, 0.0), n)
    level = math.log(1.0 / alpha)
    return _bisect(x / n, 1.0, lambda p: beta_binomial_log_e_below(x, n, p, prior) >= level)


def lower_bound(x: float, n: float, alpha: float, prior: tuple[float, float] = RARE) -> float:
    """One-sided 1 - alpha lower confidence sequence for a proportion (0 with no data)."""
    if n <= 0 or x <= 0:
        return 0.0
    x = min(x, n)
    level = math.log(1.0 / alpha)
    return _bisect(x / n, 0.0, lambda p: beta_binomial_log_e_above(x, n, p, prior) >= level)


def difference_cs(x_c: float, n_c: float, x_b: float, n_b: float, alpha: float,
                  prior: tuple[float, float] = RARE) -> tuple[float, float]:
    """A 1 - alpha CS for p_c - p_b: each version's CS at alpha/2, then interval arithmetic."""
    lc, uc = beta_binomial_cs(x_c, n_c, alpha / 2, prior)
    lb, ub = beta_binomial_cs(x_b, n_b, alpha / 2, prior)
    return lc - ub, uc - lb


# --- means with estimated variance: the Gaussian mixture ------------------------------

@dataclass(frozen=True)
class Moments:
    """Count, mean and variance of one version's scores."""

    n: float
    mean: float
    var: float


@dataclass(frozen=True)
class MixtureTest:
    """The Gaussian-mixture evidence about d = mean_c - mean_b relative to a margin."""

    estimate: float  # mean_c - mean_b
    information: float  # 1 / variance of the estimate
    log_e: float  # log e-value against d == margin (two-sided mixture)
    lower: float  # CS at the level asked for
    upper: float


def mixture_radius(information: float, alpha: float, rho: float) -> float:
    """Half-width of the normal-mixture CS for an estimate with the given information.

    With S = I (d_hat - d), a Gaussian process in intrinsic time I, the mixture of
    exp(lambda S - lambda^2 I / 2) over lambda ~ N(0, 1/rho) is a test martingale and
    |S| < sqrt((I + rho) log((I + rho) / (rho alpha^2))) at all times with probability
    >= 1 - alpha. `rho` is 1 / (the effect size the test should find fastest)^2.
    """
    if information <= 0:
        return math.inf
    v = information
    return math.sqrt((v + rho) * math.log((v + rho) / (rho * alpha * alpha))) / v


def one_sided_log_e(score: float, information: float, rho: float) -> float:
    """log e-value against "drift <= 0" from the score S = I (d_hat - margin).

    The Gaussian mixture over positive drifts only (a half-normal prior), closed form
    2 sqrt(rho / (I + rho)) exp(S^2 / 2(I + rho)) Phi(S / sqrt(I + rho)); each component is a
    supermartingale when the true drift is <= 0, so the mixture is, and one crossing of
    1/alpha is a level-alpha test at any stopping time. Pass the negated score for the
    other side.
    """
    v = information + rho
    z = score / math.sqrt(v)
    return math.log(2.0) + 0.5 * math.log(rho / v) + 0.5 * z * z + special.log_ndtr(z)


def two_sided_log_e(score: float, information: float, rho: float) -> float:
    """log e-value against "drift == 0" from the score S = I (d_hat - margin): the
    Gaussian mixture over lambda ~ N(0, 1/rho), closed form
    sqrt(rho / (I + rho)) exp(S^2 / 2(I + rho)) (`mixture_radius` is its boundary)."""
    return 0.5 * math.log(rho / (information + rho)) + score * score / (2 * (information + rho))


def normal_mixture(candidate: Moments, baseline: Moments, margin: float, alpha: float, rho: float,
                   min_var: float) -> MixtureTest:
    """Two-sample mixture test of mean_c - mean_b against `margin`, with a 1 - alpha CS.

    `min_var` floors each version's variance: at a handful of observations the sample
    variance can be 0 (all in one bucket), which would claim infinite information.
    """
    if candidate.n <= 0 or baseline.n <= 0:
        return MixtureTest(math.nan, 0.0, 0.0, -math.inf, math.inf)
    var = max(candidate.var, min_var) / candidate.n + max(baseline.var, min_var) / baseline.n
    info = 1.0 / var
    d = candidate.mean - baseline.mean
    r = mixture_radius(info, alpha, rho)
    return MixtureTest(d, info, two_sided_log_e(info * (d - margin), info, rho), d - r, d + r)


def average_e(log_es: Sequence[float]) -> float:
    """log of the plain average of e-values (an e-value again, whatever their dependence)."""
    if not log_es:
        return 0.0
    top = max(log_es)
    if math.isinf(top):
        return top
    return top + math.log(sum(math.exp(x - top) for x in log_es) / len(log_es))
