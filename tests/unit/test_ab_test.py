"""A/B tests in the state machine: a fixed split, guard checks, a winner only on a
decisive reward comparison."""

from __future__ import annotations

from dataclasses import replace

from modeldeploy import rollout
from modeldeploy.state import Reward
from modeldeploy.verdicts import Outcome

from .rollout_sim import ab_test

WINS = Reward("Pass", "0.978 vs 0.893, diff +0.085 [0.05, 0.12]", winner="candidate")
TIE = Reward("Pass", "0.89 vs 0.89, diff 0 [-0.03, 0.03]")
SHORT = Reward("Inconclusive", "too little feedback")


ab = ab_test


def test_split_holds_until_the_comparison_is_decisive_then_the_winner_is_promoted() -> None:
    sim = ab()
    assert sim.phase == rollout.AB_TESTING and sim.weights() == {"1.0.0": 60, "2.0.0": 40}
    for _ in range(5):
        sim.tick(30, reward=SHORT)
    assert sim.phase == rollout.AB_TESTING and sim.weights() == {"1.0.0": 60, "2.0.0": 40}
    assert sim.status["abTest"]["message"] == "too little feedback"
    sim.tick(30, reward=WINS)
    assert sim.phase == rollout.PROMOTING
    sim.tick(1)
    assert sim.phase == rollout.STABLE and sim.status["stableVersion"] == "2.0.0"
    assert "better on reward" in sim.status["lastRollout"]["reason"]


def test_no_significant_difference_keeps_the_stable_version() -> None:
    sim = ab()
    sim.tick(30, reward=TIE)
    assert sim.phase == rollout.ROLLING_BACK
    sim.tick(1)
    assert sim.phase == rollout.FAILED and sim.weights() == {"1.0.0": 100}
    assert sim.status["lastRollout"]["result"] == "NoWinner"
    assert "no significant difference" in sim.status["lastRollout"]["reason"]


def test_baseline_winning_keeps_the_stable_version() -> None:
    sim = ab()
    sim.tick(30, reward=replace(TIE, winner="baseline"))
    sim.tick(1)
    assert sim.status["lastRollout"]["result"] == "NoWinner" and "1.0.0 earns more reward" in sim.status["lastRollout"]["reason"]


def test_max_duration_without_enough_feedback_ends_with_no_winner() -> None:
    sim = ab(maxDuration="2m")
    for _ in range(3):
        sim.tick(30, reward=SHORT)
    assert sim.phase == rollout.AB_TESTING
    sim.tick(30, reward=SHORT)
    assert sim.phase == rollout.ROLLING_BACK and "maxDuration" in sim.status["pendingResult"]["reason"]


def test_guard_checks_end_the_test_early_with_a_rollback() -> None:
    sim = ab()
    sim.tick(30, outcome=Outcome.FAIL, reward=SHORT)
    sim.tick(30, outcome=Outcome.FAIL, reward=WINS)
    assert sim.phase == rollout.ROLLING_BACK and sim.status["pendingResult"]["result"] == "RolledBack"


def test_a_winner_waits_for_a_person_when_promote_winner_is_false() -> None:
    sim = ab(promoteWinner=False)
    sim.tick(30, reward=WINS)
    sim.tick(30, reward=WINS)
    assert sim.phase == rollout.AB_TESTING
    assert sim.reasons().count("WinnerFound") == 1
    sim.tick(1, command="promote")
    assert sim.phase == rollout.PROMOTING
