"""Regression tests for the rollout-safety defects (issue 12): each one failed on the
state machine before the fix, by the defect's number."""

from __future__ import annotations

import pytest

from modeldeploy import rollout
from modeldeploy.state import Reward
from modeldeploy.verdicts import Outcome

from .rollout_sim import Sim, ab_test, make_spec

WINS = Reward("Pass", "0.978 vs 0.893, diff +0.085 [0.05, 0.12]", winner="candidate")


def started(**overrides) -> Sim:
    sim = Sim(make_spec("1.0.0", **overrides))
    sim.to_stable()
    sim.bump("2.0.0")
    sim.tick()
    return sim


def serving(**overrides) -> Sim:
    """A canary whose candidate is ready and at its first step."""
    sim = started(**overrides)
    sim.ready.add(sim.status["candidatePredictor"])
    sim.tick(1)
    assert sim.weights()["2.0.0"] == 10
    return sim


def ab(**settings) -> Sim:
    sim = ab_test(**settings)
    assert sim.phase == rollout.AB_TESTING
    return sim


# 1. No promotion unless the latest analysis of the current step is Pass --------------
@pytest.mark.parametrize("guard", [Outcome.FAIL, Outcome.ERROR, Outcome.INCONCLUSIVE])
def test_1_ab_winner_is_not_promoted_while_guard_checks_do_not_pass(guard: Outcome) -> None:
    sim = ab()
    sim.tick(30, outcome=guard, reward=WINS)
    assert sim.phase in (rollout.AB_TESTING, rollout.PAUSED), sim.reasons()
    assert "Promoting" not in sim.reasons()
    sim.tick(30, outcome=Outcome.PASS, reward=WINS)  # guards pass now: the winner is adopted
    assert sim.phase == rollout.PROMOTING


def test_1_ab_winner_whose_guards_never_pass_ends_without_promotion() -> None:
    sim = ab(maxDuration="2m")
    sim.spec["analysis"]["inconclusiveLimit"] = 100
    for _ in range(6):
        sim.tick(30, outcome=Outcome.INCONCLUSIVE, reward=WINS)
    assert "Promoting" not in sim.reasons()
    assert sim.status["lastRollout"]["result"] == "NoWinner"
    assert "guard checks did not pass" in sim.status["lastRollout"]["reason"]


def test_1_manual_promote_is_the_one_override_and_says_so() -> None:
    sim = serving()
    sim.tick(30, outcome=Outcome.FAIL)
    sim.tick(1, command="promote")
    assert sim.phase == rollout.PROMOTING
    assert "overriding the analysis" in sim.status["pendingResult"]["reason"]
    assert any("overriding the analysis" in e.message for e in sim.events if e.reason == "Promoting")


# 2. Readiness is watched for the whole rollout ------------------------------------------
def test_2_candidate_that_turns_unready_loses_its_traffic_at_once_and_is_rolled_back_after_grace() -> None:
    sim = serving(strategy__readinessGrace="30s")
    sim.run_until(rollout.PROGRESSING)
    for _ in range(6):
        sim.tick(15)
    assert sim.weights()["2.0.0"] == 25
    cand = sim.status["candidatePredictor"]
    sim.ready.discard(cand)
    sim.partial.add(cand)  # one of its replicas still serves
    sim.tick(1)
    assert sim.weights()["2.0.0"] == 0, "users must leave an unready candidate at once"
    assert sim.reasons()[-1] == "CandidateUnready"
    sim.tick(20)
    assert sim.phase == rollout.PROGRESSING and sim.weights()["2.0.0"] == 0
    sim.tick(11)
    assert sim.phase == rollout.ROLLING_BACK
    sim.tick(1)
    assert sim.status["lastRollout"]["result"] == "RolledBack"
    assert "unready" in sim.status["lastRollout"]["reason"]


def test_2_candidate_ready_again_within_grace_gets_its_step_back_with_a_fresh_clock() -> None:
    sim = serving()
    cand = sim.status["candidatePredictor"]
    sim.ready.discard(cand)
    sim.partial.add(cand)
    sim.tick(1)
    sim.ready.add(cand)
    sim.tick(5)
    assert sim.weights()["2.0.0"] == 10 and sim.reasons()[-1] == "CandidateReady"
    restarted = rollout.parse_time(sim.status["stepStartedAt"])
    assert restarted == sim.now


def test_2_candidate_with_no_available_replica_is_removed_at_once() -> None:
    """Seldon re-routes only once every Deployment is ready: a 0 % weight would never
    reach Istio while the candidate's Deployment has no pod, so users would get 503s for
    the whole grace. Removing the predictor is what Seldon does apply."""
    sim = serving()
    sim.ready.discard(sim.status["candidatePredictor"])
    sim.tick(1)
    assert sim.phase == rollout.ROLLING_BACK and sim.weights() == {"1.0.0": 100, "2.0.0": 0}
    sim.tick(1)
    assert sim.weights() == {"1.0.0": 100}
    assert "no available replica" in sim.status["lastRollout"]["reason"]


def test_2_unready_stable_pauses_without_moving_users_and_resumes_when_ready() -> None:
    sim = serving()
    sim.ready.discard(sim.status["stablePredictor"])
    sim.tick(1)
    assert sim.phase == rollout.PAUSED and sim.status["pauseReason"] == rollout.PAUSE_STABLE_UNREADY
    for _ in range(10):
        sim.tick(30)
        assert sim.weights() == {"1.0.0": 90, "2.0.0": 10}
    sim.tick(1, command="resume")
    assert sim.phase == rollout.PAUSED and "refused" in sim.events[-1].message
    sim.ready.add(sim.status["stablePredictor"])
    sim.tick(1)
    assert sim.phase == rollout.PROGRESSING and sim.weights()["2.0.0"] == 10


# 3. Promoting has an exit ---------------------------------------------------------------
def promoting() -> Sim:
    """Promotion decided, its 100/0 routing not yet in Seldon."""
    sim = serving()
    sim.tick(1, command="promote", crash_before_apply=True)
    assert sim.phase == rollout.PROMOTING
    return sim


def test_3_promotion_whose_routing_is_never_observed_returns_to_stable_within_the_deadline() -> None:
    sim = promoting()
    for _ in range(30):  # progressDeadline is 10m
        sim.tick(30, crash_before_apply=True)  # Seldon never shows the 100/0 routing
        if sim.phase != rollout.PROMOTING:
            break
    assert sim.phase == rollout.ROLLING_BACK
    assert "progressDeadline" in sim.status["pendingResult"]["reason"]
    sim.tick(1)  # Seldon takes the 100/0 routing back
    sim.tick(1)
    assert sim.phase == rollout.FAILED and sim.weights() == {"1.0.0": 100}


def test_3_candidate_unready_while_promoting_returns_to_stable() -> None:
    sim = promoting()
    sim.ready.discard(sim.status["candidatePredictor"])
    sim.tick(1)
    assert sim.phase == rollout.ROLLING_BACK and sim.weights()["1.0.0"] == 100


@pytest.mark.parametrize("how", ["abort", "revert"])
def test_3_abort_and_version_revert_work_while_promoting(how: str) -> None:
    sim = promoting()
    if how == "abort":
        sim.tick(0, command="abort", crash_before_apply=True)
    else:
        sim.bump("1.0.0")
        sim.tick(0, crash_before_apply=True)
    assert sim.phase == rollout.ROLLING_BACK
    sim.tick(1)
    sim.tick(1)
    assert sim.status["stableVersion"] == "1.0.0" and sim.weights() == {"1.0.0": 100}


# 4. Steps edited mid-rollout ------------------------------------------------------------
@pytest.mark.parametrize("edited", [[20, 100], [50, 100], [5, 100], [10, 100], [30, 60, 100]])
def test_4_editing_steps_mid_rollout_never_crashes_or_skips_ahead(edited: list[int]) -> None:
    sim = serving()
    for _ in range(6):
        sim.tick(15)
    before = sim.weights()["2.0.0"]
    assert before == 25
    sim.spec["strategy"]["canary"]["steps"] = edited
    sim.tick(1)
    assert sim.weights()["2.0.0"] == before, "an edit alone moves no traffic"
    sim.run_until(rollout.STABLE)
    seen = [w for _, phase, w in sim.history if phase == rollout.PROGRESSING]
    after = sorted({w for w in seen if w > before})
    assert after == [w for w in edited if before < w < 100]


# 5. A step's Pass must come from inside the step ----------------------------------------
def test_5_step_does_not_advance_on_an_analysis_of_the_previous_step() -> None:
    # stepDuration shorter than the interval: before the fix the analysis that advanced
    # step 1 (same timestamp as step 2's start) also advanced step 2.
    sim = serving(strategy__canary__stepDuration="10s")
    sim.window = 60.0
    sim.tick(30)  # first analysis: its window starts before the step did
    assert sim.weights()["2.0.0"] == 10
    passes_per_step = {}
    while sim.phase == rollout.PROGRESSING:
        w = sim.weights()["2.0.0"]
        d = sim.tick(5)
        passes_per_step[w] = passes_per_step.get(w, 0) + sum(e.reason == "AnalysisPass" for e in d.events)
    assert sim.phase == rollout.PROMOTING
    assert all(n >= 1 for n in passes_per_step.values()), passes_per_step
    first = [e for e in sim.events if e.reason in ("StepAdvanced", "Promoting", "AnalysisPass")]
    for a, b in zip(first, first[1:]):
        assert not (a.reason != "AnalysisPass" and b.reason != "AnalysisPass"), "two moves on one analysis"


def test_5_shadow_end_needs_a_pass_taken_during_the_shadow() -> None:
    sim = started(strategy__shadow={"duration": "10s"})
    sim.window = 40.0
    sim.ready.add(sim.status["candidatePredictor"])
    sim.tick(1)
    assert sim.phase == rollout.SHADOWING
    sim.tick(30)  # analysis window [t-40s, t] starts 10 s before the shadow: not enough
    sim.tick(1)
    assert sim.phase == rollout.SHADOWING
    sim.run_until(rollout.PROGRESSING, step_seconds=30)


# 6. promoteWinner: false keeps the winner ------------------------------------------------
def test_6_winner_is_frozen_until_a_person_promotes() -> None:
    sim = ab(promoteWinner=False, maxDuration="2m")
    sim.tick(30, reward=WINS)
    assert sim.reasons()[-1] == "WinnerFound"
    for _ in range(10):  # past maxDuration, with the reward drifting to a tie
        sim.tick(30, reward=Reward("Pass", "tie"))
    assert sim.phase == rollout.AB_TESTING and sim.status["abTest"]["winner"] == "candidate"
    assert sim.reasons().count("WinnerFound") == 1
    sim.tick(1, command="promote")
    sim.tick(1)
    assert sim.status["stableVersion"] == "2.0.0"


# 7. Pause holds in every phase ----------------------------------------------------------
def test_7_spec_paused_holds_while_waiting_for_readiness() -> None:
    sim = started(paused=True)
    sim.tick(1)
    sim.ready.add(sim.status["candidatePredictor"])
    for _ in range(5):
        sim.tick(30)
    assert sim.phase == rollout.PAUSED and sim.weights()["2.0.0"] == 0
    sim.spec["paused"] = False
    sim.tick(1)
    sim.tick(1)
    assert sim.phase == rollout.PROGRESSING and sim.weights()["2.0.0"] == 10


def test_7_pause_command_holds_until_the_resume_command() -> None:
    sim = serving()
    sim.tick(1, command="pause")
    for _ in range(10):
        sim.tick(30)
    assert sim.phase == rollout.PAUSED and sim.weights()["2.0.0"] == 10
    sim.tick(1, command="resume")
    assert sim.phase == rollout.PROGRESSING


def test_7_commands_that_cannot_be_honoured_are_refused_with_what_to_do() -> None:
    sim = promoting()
    sim.tick(0, command="pause", crash_before_apply=True)
    refusal = sim.events[-1]
    assert refusal.type == "Warning" and "abort" in refusal.message
    sim = Sim(make_spec("1.0.0"))
    sim.to_stable()
    sim.tick(1, command="pause")
    assert "change spec.model.version" in sim.events[-1].message


# Transitions are recorded in status, with the sequence numbers their events carry ------
def test_history_records_every_transition_with_increasing_seq() -> None:
    sim = serving()
    sim.run_until(rollout.STABLE)
    history = sim.status["history"]
    assert [h["reason"] for h in history] == [e.reason for e in sim.events if e.seq is not None]
    assert [h["seq"] for h in history] == list(range(1, len(history) + 1))
    assert all(e.seq is None for e in sim.events if e.reason.startswith("Analysis"))
