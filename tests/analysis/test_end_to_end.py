"""analyse() end to end: a real exporter process, scraped by a real Prometheus.

The test feeds known traffic, in two phases: the first must fall outside the analysis
window, the second is what the verdicts must be computed from. Every number in the
results is compared with what was fed in, and the latency quantiles also with
Prometheus' own ``histogram_quantile`` over the same query.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from scipy import stats as sst
from scipy.spatial.distance import jensenshannon

from modeldeploy.analysis import Target, Templates, analyse, compare_rewards, measure_rewards, stats
from modeldeploy.analysis.templates import render
from modeldeploy.providers.prometheus import PrometheusProvider
from modeldeploy.verdicts import Outcome

from sandbox.prometheus import Prometheus

from .conftest import NAMESPACE, Exporter

pytestmark = pytest.mark.prometheus

WINDOW = "4s"
BASE, CAND = "digits-1-0-0", "digits-2-0-0"
BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, math.inf]

FAST = [[0.02, 600], [0.04, 300], [0.09, 90], [0.2, 10], [0.02, 5, "500"]]                 # 1005 requests
SLOW = [[0.02, 300], [0.04, 400], [0.07, 150], [0.09, 100], [0.2, 50], [0.02, 30, "500"]]  # 1030 requests
UNIFORM = {str(k): 100 for k in range(10)}
SKEWED = {**{str(k): 70 for k in range(10)}, "3": 370}
SHARE_OF_3 = ('sum(modeldeploy_predictions_total{deployment_name="{{deployment}}", predictor_name="{{predictor}}", '
              'class="3"}) / sum(modeldeploy_predictions_total{deployment_name="{{deployment}}", '
              'predictor_name="{{predictor}}"})')
SPEC = {
    "interval": "2s", "window": WINDOW, "minSamples": 100,
    "metrics": [
        {"name": "p99", "latency": {"quantile": 0.99}},
        {"name": "errors", "errorRate": {"max": 0.01}},
        {"name": "outputs", "outputDistribution": {}},
        {"name": "share3", "query": SHARE_OF_3, "max": 0.2},
    ],
}


def expected_buckets(requests: list[list]) -> list[tuple[float, float]]:
    counts = np.zeros(len(BUCKETS))
    for item in requests:
        counts[np.searchsorted(BUCKETS, item[0], side="left")] += item[1]
    return list(zip(BUCKETS, np.cumsum(counts).tolist()))


def test_verdicts_and_numbers_match_what_was_fed(prometheus: Prometheus, exporter: Exporter, deployment: str) -> None:
    bad, good, idle = deployment, deployment + "-ok", deployment + "-idle"
    # Phase 1: traffic that happened before the window. It would dominate if counted:
    # every request 3 s (p99 of the candidate of `good` would explode), 500 of class 0.
    for dep in (bad, good):
        for pred in (BASE, CAND):
            exporter.observe(deployment=dep, predictor=pred, requests=[[3.0, 50]], classes={"0": 500})
    t1 = prometheus.wait_for_scrape(exporter.instance, after=time.time() + 0.05)
    while time.time() < t1 + 4 + 1.2:  # the window must start after phase 1 was scraped
        time.sleep(0.1)

    # Phase 2: the traffic the analysis must see.
    exporter.observe(deployment=bad, predictor=BASE, requests=FAST, classes=UNIFORM)
    exporter.observe(deployment=bad, predictor=CAND, requests=SLOW, classes=SKEWED)
    # The executor's count of feedback requests differs from the model server's on
    # purpose: the default queries must take count and reward from the model server.
    for pred, reward in ((BASE, 240), (CAND, 300)):
        exporter.observe(deployment=good, predictor=pred, requests=FAST + [[0.01, 410, "200", "feedback"]],
                         classes=UNIFORM, feedback={"count": 400, "reward": reward})
    t2 = prometheus.wait_for_scrape(exporter.instance, after=time.time() + 0.05)
    at = t2 + 0.5
    provider = PrometheusProvider(prometheus.url, timeout=5)

    # --- a bad candidate: slower, more errors, shifted outputs -------------------------
    result = analyse(SPEC, Target(NAMESPACE, bad, BASE, CAND), provider, at=at)
    p99, errors, outputs, share3 = result.checks
    assert result.outcome == Outcome.FAIL
    assert [c.outcome for c in result.checks] == [Outcome.FAIL] * 4, result.summary()

    hb, hc = expected_buckets(FAST), expected_buckets(SLOW)
    assert (p99.n_baseline, p99.n_candidate) == (1005, 1030)
    assert p99.baseline == pytest.approx(1000 * stats.histogram_quantile(0.99, hb))
    assert p99.candidate == pytest.approx(1000 * stats.histogram_quantile(0.99, hc))
    promql = render(Templates().latency, {"namespace": NAMESPACE, "deployment": bad, "predictor": CAND,
                                          "window": WINDOW, "lookback": SPEC["interval"]})
    (prom_q,) = prometheus.query(f"histogram_quantile(0.99, {promql})", at=at)
    assert p99.candidate == pytest.approx(1000 * float(prom_q["value"][1]), rel=1e-9)  # = Prometheus' own

    assert (errors.n_baseline, errors.n_candidate) == (1005, 1030)
    assert (errors.baseline, errors.candidate) == (pytest.approx(5 / 1005), pytest.approx(30 / 1030))
    assert errors.p_value == pytest.approx(sst.fisher_exact([[30, 1000], [5, 1000]], alternative="greater").pvalue)

    b, c = list(UNIFORM.values()), [SKEWED[k] for k in UNIFORM]
    assert (outputs.n_baseline, outputs.n_candidate) == (1000, 1000)
    assert outputs.candidate == pytest.approx(float(jensenshannon(b, c)))
    assert outputs.statistic == pytest.approx(sst.chi2_contingency([b, c], correction=False)[0])

    # The custom query reads cumulative counters (no window): phase 1's class 0 counts too.
    assert share3.candidate == pytest.approx(370 / 1500) and share3.baseline == pytest.approx(100 / 1500)

    # --- a healthy candidate: same traffic, every check passes -------------------------
    ok = analyse(SPEC, Target(NAMESPACE, good, BASE, CAND), provider, at=at)
    assert ok.outcome == Outcome.PASS, ok.summary()
    assert [(c.n_baseline, c.n_candidate) for c in ok.checks[:3]] == [(1005, 1005), (1005, 1005), (1000, 1000)]
    assert ok.checks[0].baseline == ok.checks[0].candidate == pytest.approx(p99.baseline)

    # --- A/B reward over the window: 240/400 vs 300/400 ---------------------------------
    reward = measure_rewards(Target(NAMESPACE, good, BASE, CAND, window=WINDOW), provider, at=at)
    assert reward == compare_rewards(240, 400, 300, 400)
    assert reward.winner == "candidate" and reward.outcome == Outcome.PASS

    # --- no traffic at all: Inconclusive, never Pass or Fail ---------------------------
    idle_result = analyse(SPEC, Target(NAMESPACE, idle, BASE, CAND), provider, at=at)
    assert idle_result.outcome == Outcome.INCONCLUSIVE
    assert all(c.outcome == Outcome.INCONCLUSIVE for c in idle_result.checks)
    assert "no series matched" in idle_result.checks[0].message
