"""The sequential analysis of one look: which window each check reads, and the verdicts."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from modeldeploy.analysis import AnalysisConfigError, analyse, parse_analysis
from modeldeploy.analysis.query import Target
from modeldeploy.analysis.sequential_analyse import Evidence, analyse_sequential
from modeldeploy.providers import Sample
from modeldeploy.state import CarriedEvidence, Status
from modeldeploy.verdicts import SEQUENTIAL, Outcome

BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, math.inf]
TARGET = Target("models", "digits", "v1-0-0", "v2-0-0")
SPEC = parse_analysis({"metrics": [{"name": "p99", "latency": {}}, {"name": "errors", "errorRate": {}},
                                   {"name": "outputs", "outputDistribution": {}}]})


class Recorder:
    """Answers by window: the whole rollout (600 s) has 10x the requests of the step (60 s)."""

    def __init__(self, candidate_errors: int = 0) -> None:
        self.queries: list[str] = []
        self.candidate_errors = candidate_errors

    def query(self, promql: str, at: float | None = None) -> list[Sample]:
        self.queries.append(promql)
        cand = 'predictor_name="v2-0-0"' in promql
        scale = 10 if "offset 10m" in promql else 1
        n = (60 if cand else 540) * scale
        if "_bucket" in promql:
            cum = [0, 0, 0.1, 0.5, 0.8, 0.95, 1, 1, 1, 1, 1, 1, 1, 1, 1]
            return [Sample({"le": "+Inf" if math.isinf(le) else repr(le)}, c * n) for le, c in zip(BOUNDS, cum)]
        if "_count" in promql:
            errors = self.candidate_errors * scale if cand else 3 * scale
            return [Sample({"code": "200"}, n - errors), Sample({"code": "500"}, errors)]
        return [Sample({"class": str(k)}, n / 10) for k in range(10)]


def test_windows_and_verdicts() -> None:
    prom = Recorder()
    r = analyse_sequential(SPEC, TARGET, prom, Evidence(600, 60, 0.1), at=0.0)
    def windows(kind: str) -> set[str]:
        return {re.search(r"offset (\d+[smh])", q).group(1) for q in prom.queries if kind in q}  # type: ignore[union-attr]

    # Every check reads the rollout and the step: latency and outputs compare step by step
    # (their counts shown are the rollout's), errors' failure test needs the step's share.
    assert windows("_bucket") == windows("predictions_total") == windows("_count") == {"10m", "1m"}
    assert [c.method for c in r.checks] == [SEQUENTIAL] * 3
    assert {c.name: c.n_candidate for c in r.checks} == {"p99": 600, "errors": 600, "outputs": 600}
    # The step alone (60 candidate requests) shows too little to pass latency; with the nine
    # earlier minutes' strata carried (status.carriedEvidence) the same look passes.
    strata = {c.name: c.step_strata for c in r.checks if c.step_strata}
    assert set(strata) == {"p99", "outputs"} and r.outcome == Outcome.INCONCLUSIVE, r.summary()
    earlier = {name: {k: (9 * score, 9 * info) for k, (score, info) in keys.items()} for name, keys in strata.items()}
    later = analyse_sequential(SPEC, TARGET, Recorder(), Evidence(600, 60, 0.1, strata=earlier), at=0.0)
    assert later.outcome == Outcome.PASS, later.summary()  # like 600 candidate requests in one stratum


def test_errors_fail_on_the_step_window() -> None:
    r = analyse_sequential(SPEC, TARGET, Recorder(candidate_errors=15), Evidence(600, 60, 0.1), at=0.0)
    errors = {c.name: c for c in r.checks}["errors"]
    assert errors.outcome == Outcome.FAIL and r.decisive_fail
    assert "15 of 18 errors with 10% of traffic" in errors.message


def test_errors_carry_the_earlier_steps_evidence() -> None:
    """The failure test restarts with each step (the routing share) and multiplies the
    steps' e-values: evidence that falls short in one step counts in the next."""
    alone = {c.name: c for c in analyse_sequential(SPEC, TARGET, Recorder(candidate_errors=4),
                                                   Evidence(600, 60, 0.1), at=0.0).checks}["errors"]
    assert alone.outcome != Outcome.FAIL and alone.step_log_e is not None and alone.step_log_e > 0
    # The same step after an earlier one that gathered as much: together they cross 1/alpha.
    carried = Evidence(600, 60, 0.1, carried={"errors": alone.step_log_e})
    both = {c.name: c for c in analyse_sequential(SPEC, TARGET, Recorder(candidate_errors=4), carried,
                                                  at=0.0).checks}["errors"]
    assert both.step_log_e == pytest.approx(alone.step_log_e)
    assert both.e_value == pytest.approx(alone.e_value ** 2, rel=1e-6)  # type: ignore[operator]
    assert both.e_value >= both.threshold and both.outcome == Outcome.FAIL, both.message  # type: ignore[operator]
    assert "earlier steps" in both.message
    # Another check's carried evidence is not this one's.
    other = Evidence(600, 60, 0.1, carried={"latency": 50.0})
    assert {c.name: c for c in analyse_sequential(SPEC, TARGET, Recorder(candidate_errors=4), other,
                                                  at=0.0).checks}["errors"].e_value == pytest.approx(alone.e_value)


def test_the_latency_first_look_test_runs_once_at_the_first_look_that_fits() -> None:
    """`Evidence.fitted_before` from the previous look: none yet, too few requests to fit,
    enough, or unknown (an Error without counts: assume it ran, never run it twice)."""
    assert not Evidence(60, 60, 0.1).fitted_before("p99")
    few = Evidence(60, 60, 0.1, previous={"p99": {"name": "p99", "n_baseline": 90, "n_candidate": 8}})
    assert not few.fitted_before("p99")
    enough = Evidence(60, 60, 0.1, previous={"p99": {"name": "p99", "n_baseline": 540, "n_candidate": 60}})
    assert enough.fitted_before("p99")
    assert Evidence(60, 60, 0.1, previous={"p99": {"name": "p99", "outcome": "Error"}}).fitted_before("p99")
    assert Evidence(60, 60, 0.1, previous={}).fitted_before("p99")
    st = Status(lastAnalysis={"time": "2026-01-01T00:01:00.000Z", "outcome": "Inconclusive",
                              "checks": [{"name": "p99", "n_baseline": 90, "n_candidate": 8}]})
    assert not Evidence.of_status(st, datetime(2026, 1, 1, 0, 2, tzinfo=timezone.utc)).fitted_before("p99")


def test_evidence_from_status() -> None:
    st = Status(rolloutStartedAt="2026-01-01T00:00:00Z", stepStartedAt="2026-01-01T00:02:00Z", candidateWeight=25,
                step=1)
    ev = Evidence.of_status(st, datetime(2026, 1, 1, 0, 3, tzinfo=timezone.utc))
    assert ev == Evidence(180.0, 60.0, 0.25)  # a status from before trafficStartedAt existed
    # Both versions' evidence from the candidate's first traffic, not from the rollout's start.
    served = replace(st, trafficStartedAt="2026-01-01T00:00:45Z")
    assert Evidence.of_status(served, datetime(2026, 1, 1, 0, 3, tzinfo=timezone.utc)) == Evidence(135.0, 60.0, 0.25)
    carried = CarriedEvidence("2026-01-01T00:01:30.000Z", {"errors": 2.5})
    assert Evidence.of_status(replace(st, carriedEvidence=carried), datetime(2026, 1, 1, 0, 3, tzinfo=timezone.utc)
                              ).carried == {"errors": 2.5}
    assert Evidence.of_status(Status(shadow=True), datetime(2026, 1, 1, tzinfo=timezone.utc)).share == 0.5
    # A pass leads to the next step's weight, and from the last step to promotion.
    at = datetime(2026, 1, 1, 0, 3, tzinfo=timezone.utc)
    assert Evidence.of_status(replace(st, phase="Progressing"), at, (10, 25, 50, 100)).exposure == 0.5
    assert Evidence.of_status(replace(st, phase="Progressing", candidateWeight=50), at, (10, 25, 50)).exposure == 1.0
    assert Evidence.of_status(replace(st, phase="ABTesting"), at, (10, 25, 50)).exposure == 1.0


def test_method_and_tolerances_are_parsed_with_clear_errors() -> None:
    spec = parse_analysis({"metrics": [{"name": "p99", "latency": {"maxIncrease": 0.25}},
                                       {"name": "errors", "errorRate": {"maxIncrease": 0.005}}]})
    assert spec.method == "sequential"
    assert [m.max_increase for m in spec.metrics] == [0.25, 0.005]  # type: ignore[union-attr]
    assert parse_analysis({"method": "window"}).method == "window"
    with pytest.raises(AnalysisConfigError, match=r"spec.analysis.method: 'bayes' must be one of sequential, window"):
        parse_analysis({"method": "bayes"})
    with pytest.raises(AnalysisConfigError, match=r"metrics\[0\].errorRate.maxIncrease"):
        parse_analysis({"metrics": [{"name": "errors", "errorRate": {"maxIncrease": 2}}]})


def test_the_window_method_and_scripts_without_evidence_keep_the_classical_tests() -> None:
    prom = Recorder()
    r = analyse(SPEC, TARGET, prom, at=0.0)
    assert all(c.method is None for c in r.checks) and r.since is not None
    windowed = parse_analysis({"method": "window", "metrics": [{"name": "p99", "latency": {}}]})
    assert analyse(windowed, TARGET, prom, at=0.0, evidence=Evidence(600, 60, 0.1)).checks[0].method is None
