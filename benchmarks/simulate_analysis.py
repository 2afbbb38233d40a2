"""Simulated canary analyses: false-fail and detection rates of the default settings.

Not a test: run it and read the table. Each run draws one analysis window of traffic
for a baseline and a candidate predictor, serves it through a fake provider that
answers the *rendered default PromQL* with the counts Prometheus would return, and calls
the real `analyse()` with the default metric set::

    metrics: [{name: p99, latency: {}}, {name: errors, errorRate: {}}, {name: outputs, outputDistribution: {}}]

Traffic model (fresh parameters per run, so results average over bucket positions,
which matter a lot with Seldon's coarse latency buckets):

* latency lognormal, median log-uniform in 5-200 ms, sigma uniform 0.3-0.8, binned into
  the Seldon executor's buckets;
* 0.5 % of requests fail with HTTP 500;
* predictions over 10 classes with shares ~ Dirichlet(50) (roughly the digits set).

Scenarios: A/A (identical versions); every latency x1.3 (so p99 +30 %); output shift to
JS distance 0.1 (mass moved toward one random class, solved exactly); plus three for
context: only the slowest 5 % of requests slowed so that p99 alone rises 30 %; errors
0.5 % -> 2 %; and A/A again but with counts inflated as ``increase()`` would inflate them
(1m window, 30 s scrapes), which is why the default templates use exact counter
differences instead.

    python benchmarks/simulate_analysis.py [--runs 500] [--sizes 200,500,1000,2000]
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from collections.abc import Callable

import numpy as np
from scipy.optimize import brentq

from modeldeploy.analysis import Target, analyse
from modeldeploy.analysis import stats
from modeldeploy.analysis.kinds.base import DEFAULT_SIGNIFICANCE
from modeldeploy.analysis.kinds.error_rate import DEFAULT_MAX_ERROR_RATE
from modeldeploy.schema import DEFAULT_MAX_JENSEN_SHANNON, DEFAULTS
from modeldeploy.providers import Sample
from modeldeploy.verdicts import Outcome

SELDON_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, math.inf]
CLASSES = 10
ERROR_RATE = 0.005
ANALYSIS = {
    "interval": "30s",
    "metrics": [
        {"name": "p99", "latency": {}},
        {"name": "errors", "errorRate": {}},
        {"name": "outputs", "outputDistribution": {}},
    ],
}
TARGET = Target("models", "digits", "digits-1-0-0", "digits-2-0-0")


class Window:
    """One version's traffic in one window, as counts."""

    def __init__(self, latencies: np.ndarray, errors: int, classes: np.ndarray, inflate: float = 1.0) -> None:
        idx = np.searchsorted(SELDON_BUCKETS, latencies, side="left")
        # `inflate` mimics increase()'s extrapolation: every count scaled by one factor.
        self.cumulative = np.cumsum(np.bincount(idx, minlength=len(SELDON_BUCKETS))) * inflate
        self.errors = errors * inflate
        self.classes = classes * inflate

    def answer(self, promql: str) -> list[Sample]:
        if "_bucket" in promql:
            return [Sample({"le": "+Inf" if math.isinf(le) else repr(le)}, float(c))
                    for le, c in zip(SELDON_BUCKETS, self.cumulative)]
        if "_count" in promql:
            n = float(self.cumulative[-1])
            return [Sample({"code": "200"}, n - self.errors), Sample({"code": "500"}, float(self.errors))]
        if "predictions_total" in promql:
            return [Sample({"class": str(k)}, float(c)) for k, c in enumerate(self.classes)]
        raise AssertionError(f"unexpected query {promql}")


class FakePrometheus:
    def __init__(self, windows: dict[str, Window]) -> None:
        self.windows = windows

    def query(self, promql: str, at: float | None = None) -> list[Sample]:
        predictor = re.search(r'predictor_name="([^"]+)"', promql).group(1)  # type: ignore[union-attr]
        return self.windows[predictor].answer(promql)

    def is_online(self) -> bool:
        return True


def js_shift(p: np.ndarray, target: float, toward: int) -> np.ndarray:
    """p with mass moved toward one class so that JS distance(p, q) == target."""
    def mix(t: float) -> np.ndarray:
        q = (1 - t) * p
        q[toward] += t
        return q
    t = brentq(lambda t: stats.jensen_shannon(p, mix(t)) - target, 0.0, 1.0)
    return mix(t)


def tail_stretch(x: np.ndarray, med: float, sd: float, factor: float = 1.3) -> np.ndarray:
    """Slow only requests above the true p95 so that the true p99 rises by `factor`."""
    p95, p99 = med * math.exp(1.645 * sd), med * math.exp(2.326 * sd)
    k = (factor * p99 - p95) / (p99 - p95)
    out = x.copy()
    slow = out > p95
    out[slow] = p95 + (out[slow] - p95) * k
    return out


def draw(rng: np.random.Generator, n: int, scenario: str) -> dict[str, Window]:
    med = math.exp(rng.uniform(math.log(0.005), math.log(0.2)))
    sd = rng.uniform(0.3, 0.8)
    shares = rng.dirichlet(np.full(CLASSES, 50.0))
    lat_b = med * np.exp(sd * rng.standard_normal(n))
    lat_c = med * np.exp(sd * rng.standard_normal(n))
    err_c, cls_c = ERROR_RATE, shares
    if scenario == "latency x1.3":
        lat_c = lat_c * 1.3
    elif scenario == "tail-only p99 +30%":
        lat_c = tail_stretch(lat_c, med, sd)
    elif scenario == "output JS 0.1":
        cls_c = js_shift(shares, 0.1, int(rng.integers(CLASSES)))
    elif scenario == "errors 0.5% -> 2%":
        err_c = 0.02
    inflate_b = inflate_c = 1.0
    if scenario == "A/A via increase()":
        # increase() over a 1m window scraped every 30 s: it extrapolates from the samples'
        # span (60 s minus the two edge gaps, each uniform in [0, 30 s)) to the full window.
        inflate_b, inflate_c = (60 / (60 - rng.uniform(0, 30) - rng.uniform(0, 30)) for _ in range(2))
    base = Window(lat_b, int(rng.binomial(n, ERROR_RATE)), rng.multinomial(n, shares), inflate_b)
    cand = Window(lat_c, int(rng.binomial(n, err_c)), rng.multinomial(n, cls_c), inflate_c)
    return {TARGET.baseline: base, TARGET.candidate: cand}


SCENARIOS: dict[str, str | None] = {
    # scenario -> the check expected to fail (None: nothing should fail)
    "A/A": None,
    "latency x1.3": "p99",
    "output JS 0.1": "outputs",
    "tail-only p99 +30%": "p99",
    "errors 0.5% -> 2%": "errors",
    "A/A via increase()": None,
}


def simulate(scenario: str, n: int, runs: int, seed: int) -> dict[str, float]:
    expected = SCENARIOS[scenario]
    fails = check_fails = 0
    per_check = {m["name"]: 0 for m in ANALYSIS["metrics"]}  # type: ignore[index]
    for i in range(runs):
        rng = np.random.default_rng([seed, n, i, list(SCENARIOS).index(scenario)])
        result = analyse(ANALYSIS, TARGET, FakePrometheus(draw(rng, n, scenario)), at=0.0)
        fails += result.outcome == Outcome.FAIL
        for c in result.checks:
            per_check[c.name] += c.outcome == Outcome.FAIL
        if expected is not None:
            check_fails += any(c.name == expected and c.outcome == Outcome.FAIL for c in result.checks)
    out = {"fail": fails / runs, **{k: v / runs for k, v in per_check.items()}}
    if expected is not None:
        out["detected"] = check_fails / runs
    return out


def wilson_hi(rate: float, runs: int) -> float:
    return stats.wilson_interval(rate * runs, runs, 0.95)[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--sizes", default="200,500,1000,2000")
    ap.add_argument("--seed", type=int, default=20240601)
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    t0 = time.monotonic()
    print(f"{args.runs} simulated analyses per cell; default settings (significance {DEFAULT_SIGNIFICANCE:g} "
          f"per check, JS limit {DEFAULT_MAX_JENSEN_SHANNON:g}, error max {DEFAULT_MAX_ERROR_RATE:.0%}, "
          f"latency limit = baseline p99, minSamples {DEFAULTS['analysis.minSamples']}); "
          "n = requests (and predictions) per version per window\n")
    print("| scenario | target | " + " | ".join(f"n={n}" for n in sizes) + " |")
    print("|---|---|" + "---|" * len(sizes))
    goal: dict[str, tuple[str, Callable[[float], bool]]] = {
        "A/A": ("false-fail <= 2%", lambda r: r <= 0.02),
        "latency x1.3": ("detect >= 95%", lambda r: r >= 0.95),
        "output JS 0.1": ("detect >= 95%", lambda r: r >= 0.95),
        "tail-only p99 +30%": ("(context)", lambda r: True),
        "errors 0.5% -> 2%": ("(context)", lambda r: True),
        "A/A via increase()": ("(why not increase())", lambda r: True),
    }
    details = []
    for scenario in SCENARIOS:
        cells = []
        for n in sizes:
            r = simulate(scenario, n, args.runs, args.seed)
            rate = r["fail"] if SCENARIOS[scenario] is None else r["detected"]
            label, ok = goal[scenario]
            mark = "" if label.startswith("(") else (" ok" if ok(rate) else " MISS")
            cells.append(f"{rate:.1%}{mark}")
            details.append((scenario, n, r))
        print(f"| {scenario} | {goal[scenario][0]} | " + " | ".join(cells) + " |")
    print("\nper-check fail rates (p99 / errors / outputs) and any-check fail rate:")
    for scenario, n, r in details:
        print(f"  {scenario:20s} n={n:5d}: p99 {r['p99']:.1%}  errors {r['errors']:.1%}  outputs {r['outputs']:.1%}"
              f"  any {r['fail']:.1%}" + (f" (95% upper bound {wilson_hi(r['fail'], args.runs):.1%})"
                                         if SCENARIOS[scenario] is None else ""))
    print(f"\n{len(SCENARIOS) * len(sizes) * args.runs} analyses in {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
