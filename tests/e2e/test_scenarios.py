"""End-to-end rollouts in the sandbox: real model servers, real Prometheus, the operator
as shipped, and the Seldon stand-in (the only test double: Seldon's Go controller and
Istio cannot run here). Each asserts on status, events and the router's counters.

The fault campaign's sandbox half is here too: Prometheus outages at three moments of a
step, a bad-traffic soak, A/A canaries, and no failed user request across a promotion or
a rollback (the removed predictor drains). Its long variants and repeats (outages at the
start, middle and end of a step, the bad-traffic soak, A/A canaries 2 and 3), and
scenarios whose subject is also covered by faster tests (hashed and colliding names, gRPC
labels, the A/A A/B test, the operator killed in the sandbox, the never-ready candidate,
the candidate killed at 50 %), carry the `soak` marker: `make soak` runs them, and CI
runs both."""

from __future__ import annotations

import pytest

from sandbox import scenarios

from .scenario_run import outputs_by_class, run


def reasons(result: scenarios.Result) -> list[str]:
    return [r for _, r, _ in result.events]


def failed_requests(result: scenarios.Result) -> dict[str, int]:
    """Users' requests that got no answer or a 5xx (4xx are the clients' own mistakes)."""
    return {k: v for k, v in result.load.items()
            if k == "unreachable" or (k.startswith("http_") and k[5:].isdigit() and int(k[5:]) >= 500)}


def test_healthy_candidate_is_promoted(sandbox) -> None:
    r = run(sandbox, "healthy")
    assert r.result == "Promoted", (r.reason, outputs_by_class(sandbox, r))
    assert r.final_traffic == {"2.0.0": 100}
    assert reasons(r).count("StepAdvanced") == 2 and "AnalysisFail" not in reasons(r)
    assert r.candidate_served > 100
    # Under load, across the promotion: the old predictor drains before it goes.
    print(f"users' responses: {sorted(r.load.items())}")
    assert failed_requests(r) == {}


def test_slow_candidate_is_rolled_back_on_latency(sandbox) -> None:
    r = run(sandbox, "slow")
    assert r.result == "RolledBack"
    assert "p99 Fail" in r.reason
    assert r.final_traffic == {"1.0.0": 100}
    assert r.max_weight == 20  # caught at the first step
    # Under load, across the rollback: the slow candidate's in-flight requests are answered.
    print(f"users' responses: {sorted(r.load.items())}")
    assert failed_requests(r) == {}


def test_skewed_candidate_is_rolled_back_on_outputs(sandbox) -> None:
    r = run(sandbox, "skewed")
    assert r.result == "RolledBack"
    assert "outputs Fail" in r.reason and "JS" in r.reason
    assert r.max_weight == 20
    checks = {c["name"]: c for c in r.timeline.points[-1]["analysis"]["checks"]}
    assert checks["outputs"]["candidate"] > 0.1 and checks["outputs"]["p_value"] < 0.005


@pytest.mark.soak  # never ready: also test_standin's corrupt-artifact test, unit test_rollout's deadline test
def test_corrupt_candidate_is_rolled_back_at_the_progress_deadline_without_serving(sandbox) -> None:
    # As on Seldon: the candidate never becomes ready, Seldon says Creating (Failed only
    # after Kubernetes' 600 s), nothing names the checksum; the operator's 20 s deadline ends it.
    r = run(sandbox, "corrupt")
    assert r.result == "RolledBack"
    assert "not ready within" in r.reason and "20s" in r.reason, r.reason
    assert r.max_weight == 0 and r.candidate_served == 0
    assert r.load.get("http_503", 0) == 0


# A dead candidate: also test_standin's dead-backend test (503s, Seldon's status) and the unit
# tests of the readiness rule (tests/unit/test_rollout_safety.py).
@pytest.mark.soak
def test_candidate_killed_at_50_percent_is_rolled_back_and_users_503s_are_counted(sandbox) -> None:
    r = run(sandbox, "killed-at-50")
    marks = r.timeline.__dict__["_kill"]
    assert "killed" in marks
    assert r.result == "RolledBack", r.reason
    # A candidate with no replica left is removed at once (the readiness rule); the error
    # check (Istio's 503s, which the executor never sees) would catch it otherwise.
    assert any(why in r.reason for why in ("no available replica", "unready", "errors Fail")), r.reason
    assert r.final_traffic == {"1.0.0": 100}
    print(f"users' responses: {sorted(r.load.items())}")
    assert r.load.get("http_503", 0) > 0  # Istio kept routing to the dead pod until the predictor went
    # The dead predictor is never reported available again (the rollback may already be
    # over within those 2 s: removing a replica-less candidate takes one decision).
    after = [p for p in r.timeline.points if p["t"] > marks["killed"] + 2]
    assert all(p["predictor"] not in p["available"] for p in after if p["predictor"])


@pytest.mark.soak  # hashed names: also test_standin's test_hashed_deployment_names_are_read_as_ready
def test_long_names_get_hashed_deployment_names_and_still_roll_out(sandbox) -> None:
    r = run(sandbox, "long-names")
    assert r.result == "Promoted", r.reason
    assert r.final_traffic == {"2024.06.01-rc1": 100}
    assert r.deployment == "customer-churn-prediction"
    # customer-churn-prediction-v2024-05-01-0-customer-churn-classifier is 65 characters.
    names = {d for p in r.timeline.points for d in p["deployments"]}
    assert len(names) == 2 and all(d.startswith("seldon-") and len(d) == 39 for d in names), names


@pytest.mark.soak  # predictor names: also the unit tests of seldon.predictor_name
def test_colliding_version_names_get_no_traffic_before_ready(sandbox) -> None:
    r = run(sandbox, "colliding-names")
    assert r.result == "Promoted", r.reason
    assert r.final_traffic == {"2.0": 100}
    # No point with candidate weight where Seldon did not report the candidate's own
    # Deployment available (a prefix match on v2 would have given v2-0 traffic early).
    weighted = [p for p in r.timeline.points if p["phase"] == "Progressing" and p["weight"]]
    assert weighted and all(p["predictor"] == "v2-0" and "v2-0" in p["available"] for p in weighted)


@pytest.mark.soak  # gRPC labels: also test_standin's default error query test
def test_grpc_only_traffic_is_analysed(sandbox) -> None:
    r = run(sandbox, "grpc")
    assert r.result == "Promoted", r.reason
    checks = [c for p in r.timeline.points for c in (p["analysis"] or {}).get("checks", [])]
    assert any(c["name"] == "p99" and c["outcome"] == "Pass" and (c.get("n_candidate") or 0) > 0 for c in checks)
    assert any(c["name"] == "errors" and c["outcome"] == "Pass" for c in checks)


def test_client_mistakes_are_not_candidate_errors(sandbox) -> None:
    r = run(sandbox, "client-mistakes")
    print(f"users' responses: {sorted(r.load.items())}")
    assert r.result == "Promoted", r.reason
    assert r.load.get("http_400", 0) > 50
    assert failed_requests(r) == {}  # not one 5xx for a client's mistake
    assert "AnalysisFail" not in reasons(r)
    errors = [c for p in r.timeline.points for c in (p["analysis"] or {}).get("checks", []) if c["name"] == "errors"]
    # Every errors check saw a candidate error rate of 0 (sequential checks may still be
    # collecting evidence, never failing, on the way to the promotion).
    assert errors and all(c["outcome"] != "Fail" and c["candidate"] == 0 for c in errors if "candidate" in c)


@pytest.mark.soak  # kills: also tests/integration/test_campaign.py, test_step_clock.py, test_events.py
def test_operator_killed_mid_rollout_resumes_without_skipping_a_step(sandbox) -> None:
    r = run(sandbox, "operator-killed")
    marks = r.timeline.__dict__["_kill"]
    assert "killed" in marks and "restarted" in marks
    assert r.result == "Promoted"
    weights = []
    for p in r.timeline.points:
        if p["phase"] == "Progressing" and p["weight"] and (not weights or weights[-1] != p["weight"]):
            weights.append(p["weight"])
    assert weights == [20, 50]
    assert reasons(r).count("StepAdvanced") == 2 and reasons(r).count("Promoted") == 1


def test_prometheus_outage_pauses_and_never_promotes_until_it_is_back(sandbox) -> None:
    r = run(sandbox, "prometheus-down")
    marks = r.timeline.__dict__["_outage"]
    assert {"stopped", "paused", "restarted"} <= set(marks)
    during = [p for p in r.timeline.points if marks["stopped"] <= p["t"] < marks["restarted"]]
    assert all(p["phase"] in ("Progressing", "Paused") for p in during)
    assert any(p["phase"] == "Paused" for p in during)
    assert "AnalysisError" in reasons(r) and "Resumed" in reasons(r)
    assert r.result == "Promoted"


def test_skewed_shadow_is_rolled_back_before_serving_any_user(sandbox) -> None:
    r = run(sandbox, "shadow-skewed")
    assert r.result == "RolledBack"
    assert "outputs Fail" in r.reason
    assert r.candidate_served == 0 and r.candidate_mirrored > 50
    assert {p["phase"] for p in r.timeline.points} <= {"Shadowing", "RollingBack", "Failed", "Stable"}
    assert "StepAdvanced" not in reasons(r)
    # The router paired mirrored predictions with the served ones: the skewed shadow
    # disagrees with the stable version far more often than the 0.7 floor allows.
    agreement = [c for p in r.timeline.points for c in (p["analysis"] or {}).get("checks", [])
                 if c["name"] == "agreement" and "candidate" in c]
    assert agreement and agreement[-1]["outcome"] == "Fail" and agreement[-1]["candidate"] < 0.7


def test_ab_test_promotes_the_more_accurate_model(sandbox) -> None:
    r = run(sandbox, "ab-better")
    assert r.result == "Promoted", r.reason
    assert "better on reward" in r.final_status["lastRollout"]["reason"]
    assert r.final_status["abTest"]["winner"] == "candidate" and r.final_status["abTest"]["pValue"] < 0.05
    weights = {p["weight"] for p in r.timeline.points if p["phase"] == "ABTesting"}
    assert weights <= {0, 50}
    assert "ABTestStarted" in reasons(r)


@pytest.mark.soak  # an A/A test; the A/A canary below is the campaign's other A/A
def test_ab_test_of_identical_models_finds_no_winner(sandbox) -> None:
    r = run(sandbox, "ab-same")
    assert r.result == "NoWinner", r.reason
    # No winner either way: count and reward come from one scrape of the model server, and
    # the confidence sequence named a winner in none of 2000 simulated A/A tests at 0.99
    # (sandbox.aa_noise; this one is at 0.999), so a "winner" here would be a counting bug.
    ab = r.final_status["abTest"]
    assert ab.get("winner") is None and ab["lower"] < 0 < ab["upper"], ab
    assert min(ab["nBaseline"], ab["nCandidate"]) >= 300  # judged on the model server's counts
    assert r.final_traffic == {"1.0.0": 100}


@pytest.mark.soak
@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_a_two_interval_prometheus_outage_holds_the_weight_at_any_moment_of_a_step(sandbox, where) -> None:
    r = run(sandbox, f"prometheus-blip-{where}")
    marks = r.timeline.__dict__["_outage"]
    assert {"stopped", "restarted"} <= set(marks), marks
    during = [p for p in r.timeline.points if marks["stopped"] <= p["t"] < marks["restarted"] + 1]
    print(f"outage at the {where} of the {marks['weight']}% step: "
          f"{sorted({(p['phase'], p['weight']) for p in during})}")
    assert during and all(p["weight"] == marks["weight"] for p in during)
    assert r.result == "Promoted", r.reason
    weights = [p["weight"] for p in r.timeline.points if p["phase"] == "Progressing" and p["weight"]]
    assert [w for i, w in enumerate(weights) if not i or weights[i - 1] != w] == [20, 50]
    assert reasons(r).count("StepAdvanced") == 2 and "AnalysisError" in reasons(r)


# The first A/A canary runs in `make test`, the repeats in `make soak`.
@pytest.mark.parametrize("run_no", [1, pytest.param(2, marks=pytest.mark.soak), pytest.param(3, marks=pytest.mark.soak)])
def test_aa_canaries_are_promoted(sandbox, run_no) -> None:
    r = scenarios.run(sandbox, scenarios.SCENARIOS["aa-canary"], deployment=f"digits-aa-{run_no}")
    print(f"A/A canary {run_no}: {r.row()}")
    assert r.result == "Promoted", (r.reason, outputs_by_class(sandbox, r))
    assert "AnalysisFail" not in reasons(r)
    assert failed_requests(r) == {}


@pytest.mark.soak
def test_a_bad_traffic_soak_never_counts_against_the_candidate(sandbox) -> None:
    r = run(sandbox, "bad-traffic-soak")
    print(f"users' responses: {sorted(r.load.items())}")
    assert r.result == "Promoted", r.reason
    assert r.load.get("http_400", 0) > 1000 and failed_requests(r) == {}
    errors = [c for p in r.timeline.points for c in (p["analysis"] or {}).get("checks", []) if c["name"] == "errors"]
    assert errors and all(c["outcome"] != "Fail" and c["candidate"] == 0 for c in errors if "candidate" in c)
