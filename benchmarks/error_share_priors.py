"""The error check's failure test alone: which mixture over the share of errors decides sooner?

Not a test: run it and read the table. One canary step (10 % of traffic, looks every 30 s,
alpha 0.0033), the baseline at 0.5 % errors, the candidate at the rates below; the failure
test conditions on the errors, as `sequential_checks.error_rate` does, and the table gives
for each mixture how often it fails the candidate within the horizon and the median
candidate requests by then. Compared: Jeffreys' prior restricted above the null (the
check before) and the mixture over rate ratios 2-32x (`sequential.ERROR_RATIOS`, now).

    python benchmarks/error_share_priors.py [--runs 400]
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable

import numpy as np

from modeldeploy.analysis import sequential as seq

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from oracle_sprt import error_streams  # noqa: E402

SHARE = 0.1
BASELINE = 0.005
ALPHA = 0.0033
LOOK = 30
#: (label, requests per second, candidate error rate, horizon in seconds)
CASES = (("10x, 20 req/s", 20.0, 0.05, 900), ("10x, 5 req/s", 5.0, 0.05, 1800), ("10x, 1 req/s", 1.0, 0.05, 1800),
         ("3x, 20 req/s", 20.0, 0.015, 1800), ("2x, 20 req/s", 20.0, 0.01, 3600), ("100 %, 20 req/s", 20.0, 1.0, 300))
MIXTURES: dict[str, Callable[[int, int], float]] = {
    "Jeffreys above the null": lambda x, n: seq.beta_binomial_log_e_above(x, n, SHARE),
    "rate ratios 2-32x": lambda x, n: seq.ratio_mixture_log_e_above(x, n, SHARE),
}


def first_failures(rng: np.random.Generator, runs: int, rate: float, p_c: float, horizon: int) -> dict[str, np.ndarray]:
    """Per mixture, the candidate requests at its first crossing of 1/alpha in each run (nan: none
    in the horizon); the streams are `oracle_sprt`'s."""
    n_c, x_c, x_b = error_streams(rng, LOOK, runs, horizon // LOOK, rate, SHARE, BASELINE, p_c)
    assert x_b is not None
    out = {}
    for name, log_e in MIXTURES.items():
        first = np.full(runs, math.nan)
        for r in range(runs):
            hit = next((i for i in range(n_c.shape[1])
                        if log_e(int(x_c[r, i]), int(x_c[r, i] + x_b[r, i])) >= math.log(1 / ALPHA)), None)
            if hit is not None:
                first[r] = n_c[r, hit]
        out[name] = first
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=400)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args(argv)
    print(f"one step at {SHARE:.0%} of traffic, baseline {BASELINE:.1%} errors, alpha {ALPHA:g}, a look every "
          f"{LOOK} s, {args.runs} runs per case (the same streams for both mixtures)")
    print("| candidate | " + " | ".join(f"{m}: failed / median candidate requests" for m in MIXTURES) + " |")
    print("|---" * (1 + len(MIXTURES)) + "|")
    for label, rate, p_c, horizon in CASES:
        rng = np.random.default_rng([args.seed, int(p_c * 1000), int(rate)])
        cells = []
        for n in first_failures(rng, args.runs, rate, p_c, horizon).values():
            cells.append(f"{np.mean(~np.isnan(n)):.1%} / {np.nanmedian(n) if (~np.isnan(n)).any() else math.nan:.0f}")
        print(f"| {label} within {horizon // 60} min | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
