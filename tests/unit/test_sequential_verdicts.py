"""How the state machine treats sequential verdicts: one Fail is the decision, and a
check that is still collecting evidence holds the weight without ever pausing."""

from __future__ import annotations

from datetime import datetime

import pytest

from modeldeploy import rollout
from modeldeploy.verdicts import SEQUENTIAL, AnalysisResult, CheckResult, Outcome

from . import rollout_sim
from .rollout_sim import Sim, make_spec, rolled_out


def sequential_verdict(outcome: Outcome, since: datetime | None = None) -> AnalysisResult:
    return AnalysisResult.of([CheckResult("p99", outcome, f"scripted sequential {outcome.value}", n_baseline=900,
                                          n_candidate=100, method=SEQUENTIAL)], since)


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Sim:
    monkeypatch.setattr(rollout_sim, "verdict", sequential_verdict)
    s = rolled_out(make_spec("1.0.0"), wait=5)
    assert s.phase == rollout.PROGRESSING
    return s


def test_one_sequential_fail_rolls_back_at_once(sim: Sim) -> None:
    sim.tick(30, outcome=Outcome.FAIL)  # failureLimit is 2: a per-window Fail would only count
    assert sim.phase == rollout.ROLLING_BACK
    assert "crossed its threshold" in sim.status["pendingResult"]["reason"]


def test_collecting_evidence_never_pauses_and_passes_when_shown(sim: Sim) -> None:
    for _ in range(20):  # inconclusiveLimit is 3
        sim.tick(30, outcome=Outcome.INCONCLUSIVE)
        assert sim.phase == rollout.PROGRESSING and sim.weights()["2.0.0"] == 10
    assert sim.status["counters"]["inconclusive"] == 0
    sim.tick(30, outcome=Outcome.PASS)
    assert sim.weights()["2.0.0"] == 25


def test_a_sequential_check_without_data_still_pauses(sim: Sim, monkeypatch: pytest.MonkeyPatch) -> None:
    no_data = lambda outcome, since=None: AnalysisResult.of(  # noqa: E731
        [CheckResult("p99", outcome, "collecting: 0 candidate requests", n_baseline=900, n_candidate=0,
                     method=SEQUENTIAL)], since)
    monkeypatch.setattr(rollout_sim, "verdict", no_data)
    for _ in range(3):
        sim.tick(30, outcome=Outcome.INCONCLUSIVE)
    assert sim.phase == rollout.PAUSED


def test_step_evidence_is_carried_into_the_next_step_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """errorRate's failure test restarts with each step; its last look's evidence in a step
    is carried (status.carriedEvidence) when the step's clock restarts, once, and a new
    rollout starts without it."""
    logs = iter(float(i) for i in range(1, 100))

    def with_evidence(outcome: Outcome, since: datetime | None = None) -> AnalysisResult:
        return AnalysisResult.of([CheckResult("errors", outcome, "scripted", n_baseline=900, n_candidate=100,
                                              method=SEQUENTIAL, step_log_e=next(logs))], since)

    monkeypatch.setattr(rollout_sim, "verdict", with_evidence)
    sim = rolled_out(make_spec("1.0.0"), wait=5)
    sim.tick(30, outcome=Outcome.INCONCLUSIVE)  # look 1 (1 nat), still collecting at 10 %
    assert sim.status["carriedEvidence"] is None
    sim.tick(30, outcome=Outcome.PASS)  # look 2 (2 nats, the step's whole evidence) moves to 25 %
    assert sim.weights()["2.0.0"] == 25
    assert sim.status["carriedEvidence"]["logE"] == {"errors": 2.0}  # the last look only, not 1 + 2
    sim.tick(30, outcome=Outcome.INCONCLUSIVE)  # look 3
    sim.tick(30, outcome=Outcome.PASS)  # look 4 ends the 25 % step
    assert sim.weights()["2.0.0"] == 50 and sim.status["carriedEvidence"]["logE"] == {"errors": 6.0}
    sim.tick(1, command="pause")
    sim.tick(1, command="resume")  # the step's clock restarts: nothing new to carry
    assert sim.status["carriedEvidence"]["logE"] == {"errors": 6.0}
    sim.tick(30, outcome=Outcome.FAIL)  # look 5: a Fail ends it
    assert sim.phase == rollout.ROLLING_BACK
    sim.tick(1)
    assert sim.phase == rollout.FAILED and sim.status["carriedEvidence"] is None
    sim.bump("3.0.0")
    sim.tick(1)
    assert sim.status["candidateVersion"] == "3.0.0" and sim.status["carriedEvidence"] is None
