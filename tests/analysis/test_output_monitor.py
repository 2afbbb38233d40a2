"""The output check reads the output monitor's counts, for classifiers and regressor bins
alike, falls back on our server's counter where no monitor runs, and reports responses
the monitor could not read as Inconclusive with the reason. A real exporter, scraped by a
real Prometheus, run through both the window and the sequential analyses."""

from __future__ import annotations

import time

import pytest
from modeldeploy.analysis import Target, analyse
from modeldeploy.analysis.sequential_analyse import Evidence
from modeldeploy.providers.prometheus import PrometheusProvider
from modeldeploy.verdicts import Outcome
from sandbox.prometheus import Prometheus

from .conftest import NAMESPACE, Exporter

pytestmark = pytest.mark.prometheus

BASE, CAND = "v1-0-0", "v2-0-0"
SPEC = {"window": "30s", "minSamples": 100, "metrics": [{"name": "outputs", "outputDistribution": {}}]}
BINS = ["(-inf,50)", "[50,100)", "[100,200)", "[200,+inf)"]
EVEN = {b: 250 for b in BINS}
DRIFTED = {"(-inf,50)": 50, "[50,100)": 100, "[100,200)": 250, "[200,+inf)": 600}


@pytest.fixture(scope="module")
def fed(prometheus: Prometheus, exporter: Exporter) -> dict[str, str]:
    deps = {k: f"mon-{k}-{time.time_ns() % 10**8}" for k in ("drift", "same", "fallback", "unreadable")}
    feed = [
        # The monitor's counts disagree with our server's: the monitor's must be the ones read.
        (deps["drift"], BASE, {"outputs": EVEN, "classes": {"0": 1000}}),
        (deps["drift"], CAND, {"outputs": DRIFTED, "classes": {"0": 1000}}),
        (deps["same"], BASE, {"outputs": EVEN}),
        (deps["same"], CAND, {"outputs": EVEN}),
        # No monitor (a predictor rendered before it existed): our server's counter.
        (deps["fallback"], BASE, {"classes": {"0": 500, "1": 500}}),
        (deps["fallback"], CAND, {"classes": {"0": 900, "1": 100}}),
        (deps["unreadable"], BASE, {"outputs": EVEN, "unreadable": {"no_data": 0}}),
        (deps["unreadable"], CAND, {"unreadable": {"no_data": 700}}),
    ]
    for dep, predictor, counts in feed:
        exporter.observe(deployment=dep, predictor=predictor, **counts)
    deps["at"] = str(prometheus.wait_for_scrape(exporter.instance, after=time.time() + 0.05) + 0.5)
    return deps


@pytest.mark.parametrize("method", ["window", "sequential"])
def test_the_monitor_counts_decide_and_unreadable_is_inconclusive(prometheus: Prometheus, fed: dict[str, str],
                                                                  method: str) -> None:
    provider = PrometheusProvider(prometheus.url, timeout=5)
    evidence = Evidence(since_rollout_s=30, since_step_s=30, share=0.5) if method == "sequential" else None

    def outputs(dep: str):
        result = analyse({**SPEC, "method": method}, Target(NAMESPACE, dep, BASE, CAND), provider,
                         at=float(fed["at"]), evidence=evidence)
        return result.checks[0]

    drift = outputs(fed["drift"])
    assert drift.outcome is Outcome.FAIL and "[200,+inf)" in drift.message, drift
    assert outputs(fed["same"]).outcome is not Outcome.FAIL
    fallback = outputs(fed["fallback"])
    assert fallback.outcome is Outcome.FAIL and fallback.n_candidate == 1000, fallback
    unreadable = outputs(fed["unreadable"])
    assert unreadable.outcome is Outcome.INCONCLUSIVE, unreadable
    assert f"candidate {CAND}: 700 response(s) unreadable (no_data" in unreadable.message
    assert "still served" in unreadable.message and "baseline" not in unreadable.message.split("served")[1]
