"""The output check reads the output monitor's counts, for classifiers and regressor bins
alike (bins from the spec, or fixed from the stable version's outputs), falls back on our
server's counter where no monitor runs, and reports responses the monitor could not read
as Inconclusive with the reason. A real exporter, scraped by a
real Prometheus, run through both the window and the sequential analyses."""

from __future__ import annotations

import random
import time
from datetime import datetime, timezone

import pytest
from modeldeploy.analysis import Target, analyse
from modeldeploy.analysis.output_bins import choose_edges, fix_bins
from modeldeploy.analysis.sequential_analyse import Evidence
from modeldeploy.analysis.templates import DEFAULT_OUTPUTS
from modeldeploy.providers.prometheus import PrometheusProvider
from modeldeploy.state import iso
from modeldeploy.verdicts import Outcome
from sandbox.prometheus import Prometheus

from .conftest import NAMESPACE, Exporter
from .test_output_bins import fine_counts

pytestmark = pytest.mark.prometheus

BASE, CAND, HEALTHY = "v1-0-0", "v2-0-0", "v1-1-0"
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


def test_a_regressors_bins_are_fixed_from_the_stable_outputs_before_the_rollout(prometheus: Prometheus,
                                                                              exporter: Exporter) -> None:
    """Through the real query path: the stable version's fine counts before the rollout's
    start fix the bins; both versions' later counts are merged into them; a drifted
    candidate fails on the top bins, a same-distribution one does not."""
    rng = random.Random(3)
    provider = PrometheusProvider(prometheus.url, timeout=5)
    dep = f"mon-bins-{time.time_ns() % 10**8}"
    few = f"mon-few-{time.time_ns() % 10**8}"
    before = fine_counts([max(2.0, rng.gauss(150, 50)) for _ in range(2000)])
    exporter.observe(deployment=dep, predictor=BASE, outputs=before)
    exporter.observe(deployment=few, predictor=BASE, outputs=fine_counts([150.0] * 50))
    started = datetime.fromtimestamp(prometheus.wait_for_scrape(exporter.instance, after=time.time() + 0.05) + 0.5,
                                     timezone.utc)
    time.sleep(1.0)
    exporter.observe(deployment=dep, predictor=BASE, outputs=fine_counts([max(2.0, rng.gauss(150, 50))
                                                                          for _ in range(1000)]))
    exporter.observe(deployment=dep, predictor=CAND, outputs=fine_counts([max(2.0, 1.5 * rng.gauss(150, 50))
                                                                          for _ in range(1000)]))
    exporter.observe(deployment=dep, predictor=HEALTHY, outputs=fine_counts([max(2.0, rng.gauss(150, 50))
                                                                             for _ in range(1000)]))
    exporter.observe(deployment=few, predictor=BASE, outputs=fine_counts([160.0] * 300))
    now = datetime.fromtimestamp(prometheus.wait_for_scrape(exporter.instance, after=time.time() + 0.05) + 0.5,
                                 timezone.utc)

    fixed = fix_bins(provider, DEFAULT_OUTPUTS, Target(NAMESPACE, dep, BASE, CAND), "1.0.0", started, now)
    assert fixed is not None and fixed.outputs == 2000 and fixed.until == iso(started), fixed
    assert fixed.edges == choose_edges(before) and len(fixed.edges) >= 6
    evidence = Evidence(since_rollout_s=(now - started).total_seconds(), since_step_s=5, share=0.5)
    spec = {**SPEC, "method": "sequential"}
    check = analyse(spec, Target(NAMESPACE, dep, BASE, CAND), provider, at=now.timestamp(), evidence=evidence,
                    bins=fixed.edges).checks[0]
    assert check.outcome is Outcome.FAIL and "+inf)" in check.message, check
    assert check.n_baseline == 1000 and check.n_candidate == 1000
    same = analyse(spec, Target(NAMESPACE, dep, BASE, HEALTHY), provider, at=now.timestamp(), evidence=evidence,
                   bins=fixed.edges).checks[0]
    assert same.outcome is Outcome.PASS, same

    # 50 stable outputs before the start are too few: the reference runs up to now.
    late = fix_bins(provider, DEFAULT_OUTPUTS, Target(NAMESPACE, few, BASE, CAND), "1.0.0", started, now)
    assert late is not None and late.outputs == 350 and late.until == iso(now), late
    # No outputs at all: nothing fixed, and the output check waits for them.
    assert fix_bins(provider, DEFAULT_OUTPUTS, Target(NAMESPACE, "mon-none", BASE, CAND), "1.0.0", started,
                    now) is None
    waiting = analyse(spec, Target(NAMESPACE, dep, BASE, CAND), provider, at=now.timestamp(), evidence=evidence,
                      bins=()).checks[0]
    assert waiting.outcome is Outcome.INCONCLUSIVE and waiting.collecting, waiting
    assert "bins are fixed from 200 outputs" in waiting.message
