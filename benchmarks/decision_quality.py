"""Decision quality of whole rollouts: per-window analysis vs sequential vs Flagger-style.

Not a test: run it and read the table. Every run is one rollout driven by the real
`rollout.step` (the state machine the operator runs) on a fake clock, with the three
policies fed the *same* seeded traffic stream:

* ``window``     the per-window analysis (``method: window``): the real `analyse()` on
                 the default metric set, 1 m window, minSamples 100, failureLimit 2;
* ``sequential`` the anytime-valid analysis (``method: sequential``, the default);
  ``sequential-10s`` the same looking every 10 s: an anytime-valid test may look as often
  as it likes, so the decision is not held back to the next 30 s look;
* ``flagger``    Flagger-style fixed thresholds on the candidate alone over the last
                 minute: p99 <= 1.25 x the baseline's true p99 and success rate >= 99 %,
                 no data counts as a failure; rolled back after `threshold` failed checks
                 (Flagger's default is 5; 1 is shown too).

Defaults everywhere else: steps 10/25/50/100, stepDuration 1m, interval 30s. Traffic:
Poisson arrivals at the scenario's rate, routed by the applied weights; each version's
latency lognormal (median log-uniform 5-200 ms, sigma 0.3-0.8, drawn per run) counted in
the Seldon executor's buckets, 0.5 % HTTP 500s, 10 output classes with Dirichlet(50)
shares. The fake Prometheus answers the rendered default PromQL from cumulative
counters, exactly (``offset`` differences), at 30 s resolution (the analysis interval).

Reported per scenario and policy: rollback % (a false rollback on A/A rows, a detection
on regression rows), promoted %, paused % (ever paused), median seconds and candidate
requests until the rollout ended (promotion or rollback), and the share decided the
expected way within 30 minutes. A run that has not ended after --horizon minutes, or that
paused (for want of data: the traffic will not change), counts as undecided.

    python benchmarks/decision_quality.py [--runs 50] [--only aa,p99] [--policies sequential,window]

--runs 50 takes about 4 CPU-minutes; the table in docs/analysis.md used --runs 200.
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
from scipy import stats as sst

from modeldeploy import rollout, routing
from modeldeploy.analysis import Target, analyse, stats
from modeldeploy.analysis.sequential_analyse import Evidence
from modeldeploy.providers import Sample
from modeldeploy.spec import parse
from modeldeploy.verdicts import AnalysisResult, CheckResult, Outcome

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from simulate_analysis import CLASSES, SELDON_BUCKETS, js_shift  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
DT = 30  # seconds per simulated tick: the analysis interval, so every look sees fresh counts
BASE_ERRORS = 0.005
METRICS = [{"name": "p99", "latency": {}}, {"name": "errors", "errorRate": {}},
           {"name": "outputs", "outputDistribution": {}}]
TARGET = Target("models", "digits", routing.predictor_name("1.0.0"), routing.predictor_name("2.0.0"))


@dataclass(frozen=True)
class Scenario:
    label: str
    rate: float = 20.0  # requests per second, both versions together
    latency: float = 1.0  # candidate latency factor
    errors: float = BASE_ERRORS
    js: float = 0.0
    ab_test: bool = False
    margin: float | None = None  # latency tolerance (sequential maxIncrease, window maxRatioToBaseline - 1)
    bad: bool = False  # a rollback is the right decision


SCENARIOS = {
    "aa": Scenario("A/A canary, 20 req/s"),
    "ab": Scenario("A/A 30-minute A/B test (guards)", ab_test=True),
    "p99": Scenario("latency x1.3 (p99 +30%)", latency=1.3, bad=True),
    "err": Scenario("errors 5% vs 0.5%", errors=0.05, bad=True),
    "js": Scenario("outputs JS 0.1", js=0.1, bad=True),
    "m15": Scenario("+15% latency, 25% margin", latency=1.15, margin=0.25),
    "m30": Scenario("+30% latency, 25% margin", latency=1.3, margin=0.25, bad=True),
    "aa5": Scenario("A/A, 5 req/s", rate=5.0),
    "err5": Scenario("errors 5%, 5 req/s", rate=5.0, errors=0.05, bad=True),
    "aa1": Scenario("A/A, 1 req/s", rate=1.0),
    "err1": Scenario("errors 5%, 1 req/s", rate=1.0, errors=0.05, bad=True),
}


class Version:
    """One version's traffic model and cumulative counters, one row per tick."""

    def __init__(self, median: float, sigma: float, errors: float, shares: np.ndarray) -> None:
        cdf = sst.norm.cdf((np.log(np.array(SELDON_BUCKETS[:-1])) - math.log(median)) / sigma)
        self.bucket_p = np.diff(np.concatenate([[0.0], cdf, [1.0]]))
        self.errors, self.shares = errors, shares
        self.rows: list[np.ndarray] = [np.zeros(len(SELDON_BUCKETS) + 1 + CLASSES)]

    def serve(self, rng: np.random.Generator, n: int) -> None:
        row = self.rows[-1].copy()
        if n:
            row[:len(SELDON_BUCKETS)] += np.cumsum(rng.multinomial(n, self.bucket_p))
            row[len(SELDON_BUCKETS)] += rng.binomial(n, self.errors)
            row[len(SELDON_BUCKETS) + 1:] += rng.multinomial(n, self.shares)
        self.rows.append(row)

    def window(self, tick: int, seconds: float, dt: int) -> np.ndarray:
        back = max(0, tick - int(round(seconds / dt)))
        return self.rows[tick] - self.rows[back]


class FakePrometheus:
    """Answers the rendered default templates from the versions' counters."""

    def __init__(self, versions: dict[str, Version], dt: int) -> None:
        self.versions, self.dt = versions, dt
        self.tick = 0

    def query(self, promql: str, at: float | None = None) -> list[Sample]:
        predictor = re.search(r'predictor_name="([^"]+)"', promql).group(1)  # type: ignore[union-attr]
        m = re.search(r"offset (\d+)([smh])", promql)
        seconds = int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]  # type: ignore[union-attr]
        v = self.versions.get(predictor)
        w = v.window(self.tick, seconds, self.dt) if v else np.zeros(len(SELDON_BUCKETS) + 1 + CLASSES)
        nb = len(SELDON_BUCKETS)
        if "_bucket" in promql:
            return [Sample({"le": "+Inf" if math.isinf(le) else repr(le)}, float(c))
                    for le, c in zip(SELDON_BUCKETS, w[:nb])]
        if "_count" in promql:
            return [Sample({"code": "200"}, float(w[nb - 1] - w[nb])), Sample({"code": "500"}, float(w[nb]))]
        return [Sample({"class": str(k)}, float(c)) for k, c in enumerate(w[nb + 1:])]

    def is_online(self) -> bool:
        return True


def flagger(threshold_p99: float) -> Callable[[FakePrometheus, rollout.Status], AnalysisResult]:
    def judge(prom: FakePrometheus, st: rollout.Status) -> AnalysisResult:
        v = prom.versions[TARGET.candidate]
        w = v.window(prom.tick, 60, prom.dt)
        n, nb = w[len(SELDON_BUCKETS) - 1], len(SELDON_BUCKETS)
        if n == 0:
            return AnalysisResult.of([CheckResult("flagger", Outcome.FAIL, "no values found")])
        p99 = stats.histogram_quantile(0.99, list(zip(SELDON_BUCKETS, w[:nb])))
        ok = p99 <= threshold_p99 and w[nb] / n <= 0.01
        return AnalysisResult.of([CheckResult("flagger", Outcome.PASS if ok else Outcome.FAIL, f"p99 {p99}")])
    return judge


def spec_for(sc: Scenario, policy: str) -> dict:
    interval = "10s" if policy.endswith("-10s") else "30s"
    method = "window" if policy in ("window", "flagger-1", "flagger-5") else "sequential"
    analysis: dict = {"method": method, "interval": interval, "failureLimit": 2,
                      "metrics": [dict(m) for m in METRICS]}
    if sc.margin is not None:  # each method's tolerance knob
        latency = {"maxRatioToBaseline": 1 + sc.margin} if method == "window" else {"maxIncrease": sc.margin}
        analysis["metrics"][0] = {"name": "p99", "latency": latency}
    if policy.startswith("flagger"):
        analysis["failureLimit"] = int(policy.split("-")[1])
    strategy: dict = {"type": "Canary", "canary": {"steps": [10, 25, 50, 100], "stepDuration": "1m"}}
    if sc.ab_test:
        strategy = {"type": "ABTest", "abTest": {"split": 50, "maxDuration": "30m", "minSamples": 10 ** 9}}
    return {"model": {"name": "digits", "version": "2.0.0", "uri": "file:///m/2"}, "strategy": strategy,
            "analysis": analysis}


@dataclass
class RunResult:
    result: str  # Promoted, RolledBack, NoWinner, Undecided
    seconds: float
    candidate_requests: int
    paused: bool


def run_once(sc: Scenario, policy: str, seed: int, horizon_s: float) -> RunResult:
    dt = 10 if policy.endswith("-10s") else DT
    rng = np.random.default_rng(seed)
    median, sigma = math.exp(rng.uniform(math.log(0.005), math.log(0.2))), rng.uniform(0.3, 0.8)
    shares = rng.dirichlet(np.full(CLASSES, 50.0))
    cand_shares = js_shift(shares, sc.js, int(rng.integers(CLASSES))) if sc.js else shares
    traffic = np.random.default_rng([seed, 1])  # the stream: identical across policies
    base = Version(median, sigma, BASE_ERRORS, shares)
    cand = Version(median * sc.latency, sigma, sc.errors, cand_shares)
    prom = FakePrometheus({TARGET.baseline: base, TARGET.candidate: cand}, dt)
    spec = parse(spec_for(sc, policy))
    aspec = spec.analysis
    p99_limit = 1.25 * median * math.exp(2.326 * sigma)
    judge_flagger = flagger(p99_limit)
    stable = {"name": "digits", "version": "1.0.0", "uri": "file:///m/1"}
    st = rollout.Status(phase=rollout.STABLE, stableVersion="1.0.0", stablePredictor=TARGET.baseline,
                        stableModel=stable)
    applied = rollout.predictors(st)
    served_c = 0
    for tick in range(1, int(horizon_s / dt) + 1):
        now = T0 + timedelta(seconds=tick * dt)
        weights = {p.name: (100 if p.shadow else p.traffic) for p in applied}
        n = int(traffic.poisson(sc.rate * dt))
        n_c = int(traffic.binomial(n, weights.get(TARGET.candidate, 0) / 100)) if TARGET.candidate in weights else 0
        shadow = any(p.shadow for p in applied)
        served_c += n_c
        base.serve(traffic, n if shadow else n - n_c)
        cand.serve(traffic, n if shadow else n_c)
        prom.tick = tick
        analysis = None
        if rollout.analysis_due(spec, st, now):
            if not policy.startswith("flagger"):  # the operator's own call (analyzer.py)
                analysis = analyse(aspec, TARGET, prom, at=now.timestamp(),
                                   evidence=Evidence.of_status(st, now, spec.strategy.steps))
            else:
                analysis = judge_flagger(prom, st)
        names = {p.name for p in applied}
        obs = rollout.Observation(routing.Observation(exists=True, ready=frozenset(names)),
                                  applied=applied == rollout.predictors(st), analysis=analysis, generation=1)
        decision = rollout.step(spec, st, obs, now)
        for _ in range(3):  # a change of routing is followed by its watch event (at most a few in a row)
            if decision.predictors == applied:
                break
            # Applying new routing changes the SeldonDeployment, whose watch event reconciles
            # the object again within seconds. The simulated traffic follows the new weights
            # from this instant (a new predictor serves at once), so that reconcile sees them
            # applied and ready and starts the step's clock (stepObserved) now, not a tick
            # later with a tick of traffic already served outside the step.
            applied = decision.predictors
            seen = rollout.Observation(routing.Observation(exists=True, ready=frozenset(p.name for p in applied)),
                                       applied=applied == rollout.predictors(decision.status), generation=1)
            decision = rollout.step(spec, decision.status, seen, now)
        st, applied = decision.status, decision.predictors
        if st.phase == rollout.PAUSED:
            # Paused for want of data: the traffic will not change, so it stays undecided
            # (it resumes only on a passing window, which is how it paused in the first place).
            return RunResult("Undecided", tick * dt, served_c, True)
        if st.phase in (rollout.STABLE, rollout.FAILED) and st.lastRollout:
            return RunResult(st.lastRollout.result, tick * dt, served_c, False)
    return RunResult("Undecided", horizon_s, served_c, False)


def summarise(sc: Scenario, results: list[RunResult]) -> dict[str, float]:
    n = len(results)
    ended = [r for r in results if r.result != "Undecided"]
    right = "RolledBack" if sc.bad else ("NoWinner" if sc.ab_test else "Promoted")
    return {
        "rollback": sum(r.result == "RolledBack" for r in results) / n,
        "promoted": sum(r.result == "Promoted" for r in results) / n,
        "paused": sum(r.paused for r in results) / n,
        "seconds": statistics.median(r.seconds for r in ended) if ended else math.nan,
        "requests": statistics.median(r.candidate_requests for r in ended) if ended else math.nan,
        # An A/B test ends at maxDuration (30 min) after the candidate became ready, plus a look: "within 30 minutes".
        "right30": sum(r.result == right and r.seconds <= 1800 + 120 for r in results) / n,
    }


def _n(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.0f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--horizon", type=float, default=60.0, help="minutes before a run counts as undecided")
    ap.add_argument("--only", default=",".join(SCENARIOS))
    ap.add_argument("--policies", default="window,sequential,sequential-10s,flagger-1,flagger-5")
    args = ap.parse_args(argv)
    policies = args.policies.split(",")
    t0 = time.monotonic()
    print(f"{args.runs} seeded rollouts per cell, the same streams for every policy; horizon {args.horizon:g} min\n")
    print("| scenario | policy | rolled back | promoted | paused | median s to decision | median candidate "
          "requests | right way within 30 min |")
    print("|---|---|---|---|---|---|---|---|")
    for key in args.only.split(","):
        sc = SCENARIOS[key]
        for policy in policies:
            results = [run_once(sc, policy, args.seed * 100003 + i, args.horizon * 60) for i in range(args.runs)]
            s = summarise(sc, results)
            print(f"| {sc.label} | {policy} | {s['rollback']:.1%} | {s['promoted']:.1%} | {s['paused']:.1%} | "
                  f"{_n(s['seconds'])} | {_n(s['requests'])} | {s['right30']:.1%} |", flush=True)
    print(f"\n{time.monotonic() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
