"""Type-I error of each sequential check alone at low traffic, for every alpha at once.

The seeded type-I test (tests/analysis/test_sequential.py) checks alpha 0.05 with 40 looks;
this runs the latency and output checks on A/A streams at the benchmark's lowest rate
(1 req/s, 10 % to the candidate, a look every 30 s), where their normal approximations
start (20 requests per version), and records the largest e-value each stream ever
reached. A check fails at alpha when that e-value reaches 1/alpha, so one run gives the
share of streams that would ever fail at each alpha. The latency check is told the first
look is the operator's first (its fixed-sample test; at 1 req/s it has too few requests
there, at --rate 20 it decides with ~60). Latencies and classes as in
decision_quality.py (median log-uniform 5-200 ms, sigma 0.3-0.8, Seldon's buckets;
10 classes, Dirichlet(50) shares). The error check's test is exact and not run here.

    python benchmarks/type1_low_traffic.py [--runs 1500] [--looks 60] [--rate 1]
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np
from scipy import stats as sst

from modeldeploy.analysis import sequential_checks as sc

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from simulate_analysis import CLASSES, SELDON_BUCKETS  # noqa: E402

ALPHAS = (0.05, 0.02, 0.01, 0.005, 0.0033)


def _bucket_p(median: float, sigma: float) -> np.ndarray:
    cdf = sst.norm.cdf((np.log(np.array(SELDON_BUCKETS[:-1])) - math.log(median)) / sigma)
    return np.diff(np.concatenate([[0.0], cdf, [1.0]]))


def largest_log_e(kind: str, rng: np.random.Generator, rate: float, share: float, looks: int) -> float:
    """The largest log e-value one A/A stream's check reaches over its looks."""
    median, sigma = math.exp(rng.uniform(math.log(0.005), math.log(0.2))), rng.uniform(0.3, 0.8)
    p = _bucket_p(median, sigma) if kind == "latency" else rng.dirichlet(np.full(CLASSES, 50.0))
    cb, cc = np.zeros(len(p)), np.zeros(len(p))
    m = sc.Margins.of(None, sc.DEFAULT_LATENCY_PASS_MARGIN, ALPHAS[-1])
    best, fitted = -math.inf, False
    for look in range(looks):
        n = rng.poisson(rate * 30)
        n_c = rng.binomial(n, share)
        cb += rng.multinomial(n - n_c, p)
        cc += rng.multinomial(n_c, p)
        if kind == "latency":
            r = sc.latency("p99", list(zip(SELDON_BUCKETS, np.cumsum(cb))), list(zip(SELDON_BUCKETS, np.cumsum(cc))),
                           m, first_look=not fitted)  # as the operator: the first look that can fit
            fitted = fitted or min(cb.sum(), cc.sum()) >= sc.MIN_OBSERVATIONS
        else:  # JS limit 0: only the evidence decides, the strictest case
            r = sc.output_distribution("outputs", {str(k): v for k, v in enumerate(cb)},
                                       {str(k): v for k, v in enumerate(cc)}, 0.0, ALPHAS[-1])
        if r.e_value is not None:
            best = max(best, math.log(r.e_value))
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=1500)
    ap.add_argument("--looks", type=int, default=60)
    ap.add_argument("--rate", type=float, default=1.0)
    ap.add_argument("--share", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    print(f"A/A, {args.rate:g} req/s, {args.share:.0%} to the candidate, {args.looks} looks of 30 s, {args.runs} "
          "streams: share that ever reaches 1/alpha")
    print("| check | " + " | ".join(f"alpha {a:g}" for a in ALPHAS) + " |")
    print("|---|" + "---|" * len(ALPHAS))
    for kind in ("latency", "outputs"):
        rng = np.random.default_rng(args.seed)
        top = np.array([largest_log_e(kind, rng, args.rate, args.share, args.looks) for _ in range(args.runs)])
        print(f"| {kind} | " + " | ".join(f"{np.mean(top >= math.log(1 / a)):.2%}" for a in ALPHAS) + " |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
