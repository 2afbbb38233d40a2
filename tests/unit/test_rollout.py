"""The rollout state machine, driven by a fake clock and scripted verdicts."""

from __future__ import annotations

from modeldeploy import rollout
from modeldeploy.verdicts import Outcome

from .rollout_sim import Sim, make_spec


def started(version: str = "2.0.0", **overrides) -> Sim:
    sim = Sim(make_spec("1.0.0", **overrides))
    sim.to_stable()
    sim.bump(version)
    sim.tick()
    return sim


def make_candidate_ready(sim: Sim) -> None:
    sim.ready.add(sim.status["candidatePredictor"])


def test_new_object_is_pending_then_stable_at_100_percent() -> None:
    sim = Sim(make_spec("1.0.0"))
    d = sim.tick()
    assert sim.phase == rollout.PENDING
    assert [(p.name, p.traffic, p.version) for p in d.predictors] == [("v1-0-0", 100, "1.0.0")]
    sim.tick(5)
    assert sim.phase == rollout.PENDING  # not ready yet
    sim.ready.add("v1-0-0")
    sim.tick(5)
    assert sim.phase == rollout.STABLE
    assert sim.reasons() == ["Deploying", "Available"]
    ready = {c["type"]: c["status"] for c in sim.status["conditions"]}
    assert ready == {"Ready": "True", "Progressing": "False"}


def test_healthy_candidate_walks_every_step_then_is_promoted() -> None:
    sim = started()
    assert sim.phase == rollout.PROGRESSING
    assert sim.weights() == {"1.0.0": 100, "2.0.0": 0}  # no traffic before ready
    for _ in range(3):
        sim.tick(5)
    assert sim.weights() == {"1.0.0": 100, "2.0.0": 0}
    make_candidate_ready(sim)
    sim.run_until(rollout.STABLE)
    weights = [w for _, phase, w in sim.history if phase == rollout.PROGRESSING]
    assert sorted(set(weights)) == [0, 10, 25, 50]
    assert sim.status["stableVersion"] == "2.0.0"
    assert sim.status["lastRollout"]["result"] == "Promoted"
    assert [p.version for p in sim.applied] == ["2.0.0"]
    assert sim.reasons().count("StepAdvanced") == 3
    assert sim.reasons()[-2:] == ["Promoting", "Promoted"]


def test_step_waits_for_its_duration_and_a_passing_analysis() -> None:
    sim = started()
    make_candidate_ready(sim)
    sim.tick(1)
    assert sim.status["candidateWeight"] == 10
    sim.tick(30)  # first analysis passes, but the step lasts a minute
    assert sim.status["candidateWeight"] == 10
    sim.tick(29)
    assert sim.status["candidateWeight"] == 10
    sim.tick(1)  # 60 s and a Pass in this step
    assert sim.status["candidateWeight"] == 25


def test_two_failed_analyses_roll_back_and_keep_the_stable_version() -> None:
    sim = started()
    make_candidate_ready(sim)
    sim.tick(1)
    sim.tick(30, outcome=Outcome.FAIL)
    assert sim.phase == rollout.PROGRESSING and sim.status["counters"]["failed"] == 1
    sim.tick(30, outcome=Outcome.FAIL)
    assert sim.phase == rollout.ROLLING_BACK
    assert sim.weights() == {"1.0.0": 100, "2.0.0": 0}
    sim.tick(1)
    assert sim.phase == rollout.FAILED
    assert sim.weights() == {"1.0.0": 100}
    assert sim.status["lastRollout"]["result"] == "RolledBack"
    assert "failureLimit 2" in sim.status["lastRollout"]["reason"]
    sim.tick(600)  # stays failed: the same version is not retried by itself
    assert sim.phase == rollout.FAILED and sim.weights() == {"1.0.0": 100}


def test_inconclusive_pauses_never_promotes_and_resumes_when_data_returns() -> None:
    sim = started()
    make_candidate_ready(sim)
    sim.tick(1)
    for _ in range(3):
        sim.tick(30, outcome=Outcome.INCONCLUSIVE)
    assert sim.phase == rollout.PAUSED and sim.status["pauseReason"] == "inconclusive"
    for _ in range(20):
        sim.tick(30, outcome=Outcome.INCONCLUSIVE)
    assert sim.phase == rollout.PAUSED and sim.weights()["2.0.0"] == 10
    sim.tick(30, outcome=Outcome.PASS)
    assert sim.phase == rollout.PROGRESSING and sim.weights()["2.0.0"] == 10
    assert sim.status["counters"]["inconclusive"] == 0


def test_provider_errors_pause_and_never_promote() -> None:
    sim = started()
    make_candidate_ready(sim)
    sim.tick(1)
    for _ in range(50):
        sim.tick(30, outcome=Outcome.ERROR)
    assert sim.phase == rollout.PAUSED and sim.status["pauseReason"] == "errors"
    assert sim.weights() == {"1.0.0": 90, "2.0.0": 10}
    assert "Promoting" not in sim.reasons() and "RollingBack" not in sim.reasons()


def test_seldon_failure_of_the_candidate_rolls_back() -> None:
    sim = started()
    sim.failed[sim.status["candidatePredictor"]] = "model checksum mismatch"
    sim.tick(5)
    assert sim.phase == rollout.ROLLING_BACK
    assert "checksum mismatch" in sim.status["message"]
    sim.tick(1)
    assert sim.phase == rollout.FAILED
    assert all(w == 0 for t, _, w in sim.history)  # it never got a request


def test_candidate_not_ready_within_deadline_rolls_back() -> None:
    sim = started(strategy__progressDeadline="2m")
    sim.tick(119)
    assert sim.phase == rollout.PROGRESSING
    sim.tick(2)
    assert sim.phase == rollout.ROLLING_BACK
    assert "not ready within progressDeadline 120s" in sim.status["message"]


def test_new_version_mid_rollout_restarts_from_step_zero() -> None:
    sim = started()
    make_candidate_ready(sim)
    sim.run_until(rollout.PROGRESSING)
    sim.tick(1), sim.tick(60)
    assert sim.status["candidateWeight"] == 25
    sim.bump("3.0.0")
    sim.tick(1)
    assert sim.status["candidateVersion"] == "3.0.0" and sim.status["step"] == 0
    assert sim.weights() == {"1.0.0": 100, "3.0.0": 0}
    assert "Superseded" in sim.reasons()


def test_reverting_the_spec_to_the_stable_version_aborts() -> None:
    sim = started()
    make_candidate_ready(sim)
    sim.tick(1)
    sim.bump("1.0.0")
    sim.tick(1)
    assert sim.phase == rollout.ROLLING_BACK
    sim.tick(1)
    sim.tick(1)
    assert sim.phase == rollout.STABLE and sim.weights() == {"1.0.0": 100}
    assert sim.status["lastRollout"]["result"] == "Aborted"


def test_manual_promote_skips_remaining_steps_but_not_readiness() -> None:
    sim = started()
    sim.tick(1, command="promote")
    assert sim.phase == rollout.PROGRESSING and "refused" in sim.events[-1].message
    make_candidate_ready(sim)
    sim.tick(1)
    sim.tick(1, command="promote")
    assert sim.phase == rollout.PROMOTING and sim.weights() == {"1.0.0": 0, "2.0.0": 100}
    sim.tick(1)
    assert sim.phase == rollout.STABLE and sim.weights() == {"2.0.0": 100}


def test_manual_abort_and_pause_resume() -> None:
    sim = started()
    make_candidate_ready(sim)
    sim.tick(1)
    sim.spec["paused"] = True
    sim.tick(1)
    assert sim.phase == rollout.PAUSED and sim.status["pauseReason"] == "user"
    sim.tick(600)
    assert sim.status["candidateWeight"] == 10
    sim.spec["paused"] = False
    sim.tick(1)
    assert sim.phase == rollout.PROGRESSING
    sim.tick(1, command="abort")
    assert sim.phase == rollout.ROLLING_BACK
    sim.tick(1)
    assert sim.status["lastRollout"]["result"] == "Aborted"


def test_commands_without_a_rollout_are_reported_not_applied() -> None:
    sim = Sim(make_spec())
    sim.to_stable()
    d = sim.tick(1, command="promote")
    assert d.events[-1].type == "Warning" and "no rollout in progress" in d.events[-1].message
    d = sim.tick(1, command="explode")
    assert "unknown command" in d.events[-1].message


def test_failed_rollout_is_retried_on_request_or_on_a_new_version() -> None:
    sim = started()
    sim.failed[sim.status["candidatePredictor"]] = "boom"
    sim.tick(1), sim.tick(1)
    assert sim.phase == rollout.FAILED
    sim.failed.clear()
    sim.tick(1, command="retry")
    assert sim.phase == rollout.PROGRESSING and sim.status["candidateVersion"] == "2.0.0"
    sim.failed[sim.status["candidatePredictor"]] = "boom"
    sim.tick(1), sim.tick(1)
    sim.bump("3.0.0")
    sim.tick(1)
    assert sim.phase == rollout.PROGRESSING and sim.status["candidateVersion"] == "3.0.0"


def test_shadow_mirrors_first_then_walks_steps() -> None:
    sim = started(strategy__shadow={"duration": "2m"})
    assert sim.phase == rollout.SHADOWING
    make_candidate_ready(sim)
    sim.tick(1)
    shadow = [p for p in sim.applied if p.shadow]
    assert [p.version for p in shadow] == ["2.0.0"]
    assert [p.traffic for p in sim.applied if not p.shadow] == [100]
    sim.tick(60), sim.tick(59)
    assert sim.phase == rollout.SHADOWING
    sim.tick(1)
    assert sim.phase == rollout.PROGRESSING and sim.weights() == {"1.0.0": 90, "2.0.0": 10}


def test_first_version_that_never_becomes_available_is_replaced_directly() -> None:
    sim = Sim(make_spec("1.0.0"))
    sim.tick()
    sim.failed["v1-0-0"] = "checksum mismatch"
    sim.tick(1)
    assert sim.phase == rollout.FAILED
    sim.bump("1.0.1")
    sim.tick(1)
    assert sim.phase == rollout.PENDING and sim.weights() == {"1.0.1": 100}


def test_promotion_waits_until_the_100_percent_routing_is_applied() -> None:
    sim = started()
    make_candidate_ready(sim)
    sim.tick(1)
    # The operator dies after persisting Promoting but before patching Seldon.
    sim.tick(1, command="promote", crash_before_apply=True)
    assert sim.phase == rollout.PROMOTING and sim.weights() == {"1.0.0": 90, "2.0.0": 10}
    sim.tick(1)  # restarted: applies 0/100 but must not remove 1.0.0 in the same tick
    assert sim.phase == rollout.PROMOTING and sim.weights() == {"1.0.0": 0, "2.0.0": 100}
    sim.tick(1)
    assert sim.phase == rollout.STABLE and sim.weights() == {"2.0.0": 100}
