"""The operator's metrics module against its own registry (no operator process): what each
reconcile exports, and that alerts relying on increase() see the first event."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from modeldeploy import metrics
from modeldeploy.providers import NoData, ProviderTimeout, ProviderUnreachable, QueryFailed
from modeldeploy.rollout import Decision, Event, Status
from modeldeploy.verdicts import AnalysisResult, CheckResult, Outcome
from sandbox.processes import free_port

NS, NAME = "team-a", "digits"


@pytest.fixture
def m() -> metrics.OperatorMetrics:
    return metrics.OperatorMetrics(CollectorRegistry())


def value(m: metrics.OperatorMetrics, sample: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(sample, labels)


def decision(phase: str, weight: int = 0, events: tuple[Event, ...] = (), ready: bool = True, **kw) -> Decision:
    st = Status(phase=phase, candidateWeight=weight, stableVersion="1.0.0", candidateVersion="2.0.0",
                conditions=({"type": "Ready", "status": "True" if ready else "False"},), **kw)
    return Decision(st, events, ())


ANALYSIS = AnalysisResult.of([
    CheckResult("p99", Outcome.PASS, "ok", baseline=120.0, candidate=131.0, threshold=250.0, n_baseline=900,
                n_candidate=300, p_value=0.4),
    CheckResult("outputs", Outcome.INCONCLUSIVE, "only 40 predictions"),
])


def test_phase_is_one_for_the_current_phase_and_zero_for_the_others(m) -> None:
    m.record(NS, NAME, decision("Progressing", 25))
    assert value(m, "modeldeploy_rollout_phase", namespace=NS, name=NAME, phase="Progressing") == 1
    assert value(m, "modeldeploy_rollout_phase", namespace=NS, name=NAME, phase="Paused") == 0
    assert value(m, "modeldeploy_candidate_weight", namespace=NS, name=NAME) == 25
    assert value(m, "modeldeploy_ready", namespace=NS, name=NAME) == 1
    m.record(NS, NAME, decision("Paused", 25, ready=False))
    phases = {p: value(m, "modeldeploy_rollout_phase", namespace=NS, name=NAME, phase=p) for p in metrics.PHASES}
    assert phases == {p: (1 if p == "Paused" else 0) for p in metrics.PHASES}
    assert value(m, "modeldeploy_ready", namespace=NS, name=NAME) == 0
    m.record(NS, NAME, decision("Shadowing", 0, shadow=True))
    assert value(m, "modeldeploy_candidate_weight", namespace=NS, name=NAME) == 0


def test_rollout_results_start_at_zero_so_the_first_rollback_is_an_increase(m) -> None:
    m.record(NS, NAME, decision("Progressing", 10))
    for result in ("Promoted", "RolledBack", "Aborted"):
        assert value(m, "modeldeploy_rollouts_total", namespace=NS, name=NAME, result=result) == 0
    m.record(NS, NAME, decision("Failed", events=(Event("Warning", "RolledBack", "2.0.0 was rolled back"),)))
    assert value(m, "modeldeploy_rollouts_total", namespace=NS, name=NAME, result="RolledBack") == 1
    assert value(m, "modeldeploy_events_total", namespace=NS, name=NAME, reason="RolledBack", type="Warning") == 1
    assert value(m, "modeldeploy_rollouts_total", namespace=NS, name=NAME, result="Promoted") == 0


def test_checks_are_counted_by_verdict_with_their_numbers(m) -> None:
    m.record(NS, NAME, decision("Progressing", 10), analysis_seconds=0.2, analysis=ANALYSIS)
    assert value(m, "modeldeploy_analysis_checks_total", namespace=NS, name=NAME, check="p99", verdict="Pass") == 1
    assert value(m, "modeldeploy_analysis_checks_total", namespace=NS, name=NAME, check="p99", verdict="Fail") == 0
    assert value(m, "modeldeploy_analysis_checks_total", namespace=NS, name=NAME, check="outputs",
                 verdict="Inconclusive") == 1
    assert value(m, "modeldeploy_analyses_total", namespace=NS, name=NAME, outcome="Inconclusive") == 1
    for series, v in (("baseline", 120), ("candidate", 131), ("threshold", 250)):
        assert value(m, "modeldeploy_analysis_check_value", namespace=NS, name=NAME, check="p99", series=series) == v
    # an Inconclusive check measured nothing: no number rather than a stale one
    assert value(m, "modeldeploy_analysis_check_value", namespace=NS, name=NAME, check="outputs",
                 series="candidate") is None
    assert value(m, "modeldeploy_analysis_duration_seconds_count") == 1
    assert value(m, "modeldeploy_analysis_duration_seconds_bucket", le="0.25") == 1
    # the rollout ends: its numbers go, its counts stay
    m.record(NS, NAME, decision("Stable", 0, events=(Event("Normal", "Promoted", "2.0.0 is now stable"),)))
    assert value(m, "modeldeploy_analysis_check_value", namespace=NS, name=NAME, check="p99", series="baseline") is None
    assert value(m, "modeldeploy_analysis_checks_total", namespace=NS, name=NAME, check="p99", verdict="Pass") == 1
    assert value(m, "modeldeploy_rollouts_total", namespace=NS, name=NAME, result="Promoted") == 1


def test_sequential_checks_export_their_evidence_and_confidence_sequence(m) -> None:
    seq = AnalysisResult.of([
        CheckResult("p99", Outcome.INCONCLUSIVE, "collecting", baseline=120.0, candidate=131.0, threshold=200.0,
                    n_baseline=900, n_candidate=100, method="sequential", e_value=3.5, alpha=0.005, estimate=0.08,
                    lower=-0.05, upper=0.21, margin=0.0, pass_margin=0.2),
        CheckResult("outputs", Outcome.PASS, "no shift", candidate=0.02, threshold=200.0, method="sequential",
                    e_value=0.4, alpha=0.005, estimate=0.02, margin=0.05),
        CheckResult("classic", Outcome.PASS, "ok", baseline=1.0, candidate=1.0, threshold=2.0, p_value=0.5),
    ])
    m.record(NS, NAME, decision("Progressing", 10), analysis=seq)

    def evidence(check: str, series: str) -> float | None:
        return value(m, "modeldeploy_analysis_check_evidence", namespace=NS, name=NAME, check=check, series=series)

    def increase(check: str, series: str) -> float | None:
        return value(m, "modeldeploy_analysis_check_increase", namespace=NS, name=NAME, check=check, series=series)

    assert (evidence("p99", "e_value"), evidence("p99", "threshold")) == (3.5, 200.0)
    assert [increase("p99", s) for s in metrics.INCREASE_SERIES] == [0.08, -0.05, 0.21, 0.0, 0.2]
    # outputs has no interval: those series are absent rather than invented
    assert [increase("outputs", s) for s in metrics.INCREASE_SERIES] == [0.02, None, None, 0.05, None]
    # a per-window check has no e-value: its threshold is a p99 limit, not an evidence threshold
    assert evidence("classic", "threshold") is None and increase("classic", "estimate") is None
    # a check that is back to collecting its first requests has no evidence: the old number goes
    m.record(NS, NAME, decision("Progressing", 10), analysis=AnalysisResult.of([
        CheckResult("p99", Outcome.INCONCLUSIVE, "collecting: 5 requests", method="sequential")]))
    assert evidence("p99", "e_value") is None and increase("p99", "upper") is None
    assert evidence("outputs", "e_value") == 0.4
    # the rollout ends: every number goes
    m.record(NS, NAME, decision("Stable", 0, events=(Event("Normal", "Promoted", "2.0.0 is now stable"),)))
    assert evidence("outputs", "e_value") is None and increase("outputs", "estimate") is None


def test_heartbeat_errors_and_forget(m) -> None:
    m.record(NS, NAME, decision("Progressing", 10), analysis=ANALYSIS)
    m.reconciled(NS, NAME, now=1234.5)
    m.reconcile_failed(NS, NAME)
    m.record("other", "iris", decision("Stable"))
    assert value(m, "modeldeploy_reconcile_last_success_timestamp_seconds", namespace=NS, name=NAME) == 1234.5
    assert value(m, "modeldeploy_reconcile_errors_total", namespace=NS, name=NAME) == 1
    m.forget(NS, NAME)
    exposed = [s for fam in m.registry.collect() for s in fam.samples if s.labels.get("name") == NAME]
    assert exposed == []
    assert value(m, "modeldeploy_rollout_phase", namespace="other", name="iris", phase="Stable") == 1


def test_query_errors_are_counted_by_kind_through_the_provider_wrapper(m) -> None:
    class Flaky:
        def __init__(self) -> None:
            self.errors = [ProviderUnreachable("connection refused"), ProviderTimeout("5s"), QueryFailed("bad"),
                           NoData("none"), RuntimeError("bug")]

        def query(self, promql: str, at: float | None = None) -> list:
            raise self.errors.pop(0)

        def is_online(self) -> bool:
            return False

    p = metrics.InstrumentedProvider(Flaky(), m)
    for expected in (ProviderUnreachable, ProviderTimeout, QueryFailed, NoData, RuntimeError):
        with pytest.raises(expected):
            p.query("up")
    counts = {k: value(m, "modeldeploy_metric_query_errors_total", kind=k) for k in metrics.QUERY_ERROR_KINDS}
    assert counts == {"unreachable": 1, "timeout": 1, "query_failed": 1, "other": 2}
    assert p.is_online() is False
    m.query_error("weird")
    assert value(m, "modeldeploy_metric_query_errors_total", kind="other") == 3


def test_every_metric_is_documented() -> None:
    from .conftest import REPO

    doc = (REPO / "docs" / "metrics.md").read_text()
    names = {n.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count")
             for n in metrics.OperatorMetrics(CollectorRegistry()).names()}
    missing = sorted(n for n in names if f"`{n}`" not in doc)
    assert not missing, f"add to docs/metrics.md: {missing}"


def test_serve_exposes_the_process_registry_on_http() -> None:
    assert metrics.serve_from_env({"MODELDEPLOY_METRICS_PORT": "off"}) is None
    metrics.serve_from_env({"MODELDEPLOY_METRICS_PORT": str(free_port())})
    assert metrics._server_port  # a second serve() in the same process is a no-op
    metrics.record("t", "served", decision("Stable"))
    scraped = urllib.request.urlopen(f"http://127.0.0.1:{metrics._server_port}/metrics", timeout=5).read().decode()
    assert 'modeldeploy_rollout_phase{name="served",namespace="t",phase="Stable"} 1.0' in scraped
    assert "modeldeploy_operator_info{" in scraped
    metrics.forget("t", "served")


def test_an_ab_test_exports_its_reward_rates_and_counts_no_winner_once(m) -> None:
    ab = {"outcome": "Pass", "winner": None, "baselineRate": 0.81, "candidateRate": 0.8}
    m.record(NS, NAME, decision("ABTesting", 50, abTest=ab))
    assert value(m, "modeldeploy_rollout_phase", namespace=NS, name=NAME, phase="ABTesting") == 1
    assert value(m, "modeldeploy_ab_reward_rate", namespace=NS, name=NAME, series="candidate") == 0.8
    # NoWinner names both the start of the rollback and its end: one finished rollout
    m.record(NS, NAME, decision("RollingBack", 0, abTest=ab, events=(Event("Normal", "NoWinner", "ending"),)))
    m.record(NS, NAME, decision("Failed", 0, abTest=ab, events=(Event("Normal", "NoWinner", "not adopted"),)))
    assert value(m, "modeldeploy_rollouts_total", namespace=NS, name=NAME, result="NoWinner") == 1
    assert value(m, "modeldeploy_events_total", namespace=NS, name=NAME, reason="NoWinner", type="Normal") == 2
    assert value(m, "modeldeploy_ab_reward_rate", namespace=NS, name=NAME, series="candidate") is None
