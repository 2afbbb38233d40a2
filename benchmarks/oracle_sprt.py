"""How soon could *any* valid test decide? Wald's SPRT told the true effect, at the benchmark's looks.

The lower bound behind the "median candidate requests" targets of issue 16: an SPRT of the
true alternative against "no increase", which knows everything a real test must estimate
(the size of the regression, the baseline's error rate, the latency spread), stopped at
the first look where its likelihood ratio crosses 1/alpha. Among tests with the same
alpha and looks, none has a smaller expected number of observations to a rejection of the
null under that alternative (Wald & Wolfowitz 1948, for the continuously watched case), so
its medians are what the analysis can at best approach. Traffic as in
`decision_quality.py`: Poisson arrivals at 20 req/s, 10 % to the candidate, looks every
30 s (or --look).

The same for the 1 req/s targets ("within 30 minutes"): `low_traffic`.

    python benchmarks/oracle_sprt.py [--alpha 0.0033] [--look 30] [--runs 20000]
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np


def error_streams(rng: np.random.Generator, look: int, runs: int, looks: int, rate: float = 20.0,
                  share: float = 0.1, p_b: float = 0.005, p_c: float = 0.05,
                  baseline: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Cumulative candidate requests, candidate errors and (``baseline``) baseline errors at
    each look, one row per run: Poisson arrivals routed to the candidate with ``share``."""
    arrived = rng.poisson(rate * look, (runs, looks))
    per_look = rng.binomial(arrived, share)
    x_c = rng.binomial(per_look, p_c).cumsum(axis=1)
    x_b = rng.binomial(arrived - per_look, p_b).cumsum(axis=1) if baseline else None
    return per_look.cumsum(axis=1), x_c, x_b


def errors(rng: np.random.Generator, alpha: float, look: int, runs: int, rate: float = 20.0, share: float = 0.1,
           p_b: float = 0.005, p_c: float = 0.05, looks: int = 200,
           share_test: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Candidate requests at the first look where the likelihood ratio of (p_c, p_b known)
    against "the candidate's rate is p_b" exceeds 1/alpha (the baseline's rate known too:
    its requests then carry no information). ``share_test``: told only p_c / p_b, the
    SPRT on the share of errors that came from the candidate (as `low_traffic`)."""
    n_c, x_c, x_b = error_streams(rng, look, runs, looks, rate, share, p_b, p_c, baseline=share_test)
    if x_b is not None:
        theta = share * p_c / (share * p_c + (1 - share) * p_b)
        llr = x_c * math.log(theta / share) + x_b * math.log((1 - theta) / (1 - share))
    else:
        llr = x_c * math.log(p_c / p_b) + (n_c - x_c) * math.log((1 - p_c) / (1 - p_b))
    return _first(llr, n_c, alpha)


def latency(rng: np.random.Generator, alpha: float, look: int, runs: int, rate: float = 20.0, share: float = 0.1,
            factor: float = 1.3, looks: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """The same for a uniform slow-down: log-normal latencies with sigma ~ U(0.3, 0.8) per run
    (as the benchmark), known sigma and known shift, observed exactly (no buckets); the
    two-sample statistic, so the baseline's level is estimated from its own requests."""
    delta = math.log(factor)
    sigma = rng.uniform(0.3, 0.8, (runs, 1))
    n = rng.poisson(rate * look, (runs, looks))
    n_c = rng.binomial(n, share)
    n_b = n - n_c
    # Sums of standard normal log-latency deviations per look: N(0, n) each.
    s_c = (rng.standard_normal((runs, looks)) * np.sqrt(n_c)).cumsum(axis=1)
    s_b = (rng.standard_normal((runs, looks)) * np.sqrt(n_b)).cumsum(axis=1)
    nc, nb = n_c.cumsum(axis=1), n_b.cumsum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        d_hat = delta + sigma * (s_c / nc - s_b / nb)
        info = 1 / (sigma ** 2 * (1 / nc + 1 / nb))
        llr = np.nan_to_num(info * (delta * d_hat - delta ** 2 / 2), nan=0.0)
    return _first(llr, nc, alpha)


def low_traffic(rng: np.random.Generator, alpha: float, beta: float, look: int, runs: int, p_c: float,
                rate: float = 1.0, p_b: float = 0.005, margin: float = 0.02, steps: tuple[int, ...] = (10, 25, 50),
                step_s: int = 60, horizon_s: int = 3600, share_test: bool = False) -> np.ndarray:
    """Seconds until an oracle canary on the error rate alone decides (nan: not in the horizon).

    The analysis's own rule with every unknown given: a step at weight w passes once an
    SPRT of "the increase is at most margin / w' " (w' the next weight, 1 at the last step)
    against the candidate's true rate crosses 1/beta on all candidate requests so far, the
    step having lasted step_s; it fails once an SPRT of p_c against "no increase" crosses
    1/alpha. Rates known, no other check to wait for: a real rollout can only be slower.
    Positive seconds: promoted; negative: rolled back.

    ``share_test``: the failure test is not told the baseline's rate, only the ratio
    p_c / p_b: Wald's SPRT on the share of each step's errors that came from the candidate
    (the statistic the analysis uses; given the errors, the baseline's rate drops out), the
    steps' likelihood ratios multiplied. The bound for any failure test that must learn the
    baseline's rate from the rollout's own requests.
    """
    out = np.full(runs, np.nan)
    fail_step = (math.log(p_c / p_b), math.log((1 - p_c) / (1 - p_b)))
    for r in range(runs):
        n = x = 0
        t = step_start = 0
        k = 0
        llr_share = 0.0
        while t < horizon_s:
            t += look
            arrived = rng.poisson(rate * look)
            m = rng.binomial(arrived, steps[k] / 100)
            x_m = rng.binomial(m, p_c)
            n, x = n + m, x + x_m
            if share_test:
                w = steps[k] / 100
                theta = w * p_c / (w * p_c + (1 - w) * p_b)
                x_b = rng.binomial(arrived - m, p_b)
                llr_share += x_m * math.log(theta / w) + x_b * math.log((1 - theta) / (1 - w))
            llr_fail = llr_share if share_test else x * fail_step[0] + (n - x) * fail_step[1]
            if llr_fail >= math.log(1 / alpha):
                out[r] = -t
                break
            null = p_b + margin / ((steps[k + 1] if k + 1 < len(steps) else 100) / 100)
            if null < 1 and t - step_start >= step_s:
                llr = x * math.log(p_c / null) + (n - x) * math.log((1 - p_c) / (1 - null))
                if llr >= math.log(1 / beta):
                    k, step_start = k + 1, t
                    if k == len(steps):
                        out[r] = t
                        break
    return out


def _first(llr: np.ndarray, n_c: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """(index of the deciding look, candidate requests by then) per run; -1 and nan if none."""
    crossed = llr >= math.log(1 / alpha)
    at = np.where(crossed.any(axis=1), crossed.argmax(axis=1), -1)
    return at, np.where(at >= 0, n_c[np.arange(len(at)), np.maximum(at, 0)], np.nan)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--alpha", type=float, default=0.0033)
    ap.add_argument("--look", type=int, default=30, help="seconds between looks")
    ap.add_argument("--runs", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=16)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    print(f"oracle SPRT, alpha {args.alpha:g}, a look every {args.look} s, 20 req/s, 10 % to the candidate, "
          f"{args.runs} runs")
    print("| case | decided at the 1st look | by the 2nd | median candidate requests | mean |")
    print("|---|---|---|---|---|")
    for label, (at, n) in (("errors 5 % vs 0.5 %", errors(rng, args.alpha, args.look, args.runs)),
                           ("latency x1.3", latency(rng, args.alpha, args.look, args.runs)),
                           # Its own stream, so that the other rows keep theirs.
                           ("errors 5 %, told the rate ratio but not the baseline's rate",
                            errors(np.random.default_rng([args.seed, 1]), args.alpha, args.look, args.runs, share_test=True))):
        print(f"| {label} | {np.mean(at == 0):.1%} | {np.mean((at >= 0) & (at <= 1)):.1%} | {np.nanmedian(n):.0f} "
              f"| {np.nanmean(n):.0f} |")
    print(f"\noracle canary on the error rate alone at 1 req/s, steps 10/25/50/100, stepDuration 1m, looks every "
          f"{args.look} s, alpha {args.alpha:g}, beta 0.05, pass margin 2 points at the weight a step leads to")
    print("| candidate | promoted within 30 min | rolled back within 30 min | median s to a decision |")
    print("|---|---|---|---|")
    for label, p_c in (("healthy (0.5 %)", 0.005), ("5 % errors", 0.05)):
        t = low_traffic(rng, args.alpha, 0.05, args.look, args.runs // 10, p_c)
        print(f"| {label} | {np.mean((t > 0) & (t <= 1800)):.1%} | {np.mean((t < 0) & (t >= -1800)):.1%} | "
              f"{np.nanmedian(np.abs(t)):.0f} |")
    t = low_traffic(np.random.default_rng([args.seed, 2]), args.alpha, 0.05, args.look, args.runs // 10, 0.05,
                    share_test=True)
    print(f"| 5 % errors, the failure test told the rate ratio but not the baseline's rate | "
          f"{np.mean((t > 0) & (t <= 1800)):.1%} | {np.mean((t < 0) & (t >= -1800)):.1%} | "
          f"{np.nanmedian(np.abs(t)):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
