"""The plugin without a cluster: rendering (exact text for fixed inputs and clock), command planning, errors."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from modeldeploy.cli import plan, router_resource
from modeldeploy.cli_format import render_list, render_status, step_text
from modeldeploy.cli_history import EventRow, group_rollouts
from modeldeploy.cli_kube import EXIT_USAGE, CliError
from modeldeploy.cli_text import PLAIN, Style, duration, number
from modeldeploy.routers.seldon_v1 import RESOURCE as SELDON_V1
from modeldeploy.routing import Resource

NOW = datetime(2025, 1, 1, 12, 5, 0, tzinfo=timezone.utc)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def mdep(status: dict, spec: dict | None = None) -> dict:
    return {"metadata": {"name": "digits", "namespace": "team-a", "generation": 2,
                         "creationTimestamp": "2025-01-01T10:00:00Z"},
            "spec": spec or {"model": {"name": "digits", "version": "2.0.0"},
                             "strategy": {"canary": {"steps": [10, 25, 50, 100], "stepDuration": "1m"}}},
            "status": {"observedGeneration": 2, **status}}


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (59, "59s"), (119, "119s"), (125, "2m5s"), (600, "10m"),
                                               (3 * 3600 + 300, "3h5m"), (30 * 3600, "30h"), (5 * 86400, "5d")])
def test_durations_read_like_kubectl(seconds, text) -> None:
    assert duration(seconds) == text


def test_numbers_keep_four_significant_digits() -> None:
    assert [number(x) for x in (None, 3, 120.0, 131.24567, 0.0011, 1.2e-9, float("nan"))] == [
        "-", "3", "120", "131.2", "0.0011", "1.2e-09", "NaN"]


def test_shadow_traffic_and_waiting_for_readiness() -> None:
    shadow = mdep({"phase": "Shadowing", "stableVersion": "1.0.0", "stablePredictor": "v1-0-0",
                   "candidateVersion": "2.0.0", "candidatePredictor": "v2-0-0", "shadow": True,
                   "stepStartedAt": "2025-01-01T12:04:00Z"},
                  {"model": {"name": "digits", "version": "2.0.0"}, "strategy": {"shadow": {"duration": "5m"}}})
    out = render_status(shadow, [], NOW)
    assert "Step:         shadow (mirrored traffic), for 60s of 5m" in out
    assert "  stable     v1-0-0     1.0.0      100%" in out
    assert "  candidate  v2-0-0     2.0.0    shadow  mirrored copy of the stable traffic; responses discarded" in out
    assert step_text(shadow) == "shadow"
    waiting = mdep({"phase": "Progressing", "stableVersion": "1.0.0", "stablePredictor": "v1-0-0",
                    "candidateVersion": "2.0.0", "candidatePredictor": "v2-0-0"})
    out = render_status(waiting, [], NOW)
    assert "Step:         0/4: waiting for the candidate to be ready (progressDeadline 10m)" in out
    assert "Next:         waiting for the SeldonDeployment to report the candidate ready" in out


def test_the_hints_name_the_routers_resource_not_seldon() -> None:
    kserve = Resource("serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService")
    waiting = mdep({"phase": "Progressing", "stableVersion": "1.0.0", "stablePredictor": "v1-0-0",
                    "candidateVersion": "2.0.0", "candidatePredictor": "v2-0-0"})
    pending = mdep({"phase": "Pending"})
    never = mdep({"phase": "Failed"})
    outs = [render_status(m, [], NOW, resource=kserve) for m in (waiting, pending, never)]
    assert "Next:         waiting for the InferenceService to report the candidate ready" in outs[0]
    assert ("Next:         waiting for the InferenceService to report the model available "
            "(kubectl get inferenceservices digits, then the pods)") in outs[1]
    assert "Next:         the stable version never became available: check the InferenceService and its pods" in outs[2]
    assert not [o for o in outs if re.search(r"Seldon|sdep", o)]
    assert "(kubectl get seldondeployments digits, then the pods)" in render_status(pending, [], NOW)


def test_the_plugin_reads_the_router_as_the_operator_does(monkeypatch) -> None:
    monkeypatch.delenv("MODELDEPLOY_ROUTER", raising=False)
    assert router_resource() == SELDON_V1
    monkeypatch.setenv("MODELDEPLOY_ROUTER", "seldon-v1")
    assert router_resource() == SELDON_V1
    monkeypatch.setenv("MODELDEPLOY_ROUTER", "nope")
    with pytest.raises(CliError, match="unknown router 'nope'") as e:
        router_resource()
    assert e.value.code == EXIT_USAGE


def test_ab_test_shows_the_reward_comparison() -> None:
    m = mdep({"phase": "ABTesting", "stableVersion": "1.0.0", "stablePredictor": "v1-0-0",
              "candidateVersion": "2.0.0", "candidatePredictor": "v2-0-0", "candidateWeight": 50,
              "stepStartedAt": "2025-01-01T12:00:00Z",
              "abTest": {"outcome": "Pass", "winner": "candidate", "confidence": 0.95, "baselineRate": 0.81,
                         "candidateRate": 0.86, "nBaseline": 1200, "nCandidate": 1180, "difference": 0.05,
                         "lower": 0.02, "upper": 0.08, "pValue": 0.0009, "time": "2025-01-01T12:04:30Z",
                         "message": "candidate wins: reward 0.860 (1180) vs baseline 0.810 (1200)"}},
             {"model": {"name": "digits", "version": "2.0.0"}, "strategy": {
                 "type": "ABTest", "abTest": {"split": 50, "minSamples": 1000, "promoteWinner": False}}})
    out = render_status(m, [], NOW)
    print(out)
    assert "Step:         A/B test at 50/50, for 5m (until 1000 feedback per version, at most 30m; " \
           "promoteWinner false)" in out
    assert "A/B test Pass, candidate wins, 30s ago" in out
    assert re.search(r"^  VERSION +REWARD RATE +FEEDBACK +DIFFERENCE +95% CI +P-VALUE$", out, re.M)
    assert re.search(r"^  candidate +0\.86 +1180 +0\.05 +\[0\.02, 0\.08\] +0\.0009$", out, re.M)
    assert "the candidate won the A/B test and promoteWinner is false: `kubectl modeldeploy promote digits`" in out
    assert step_text(m) == "A/B"
    assert plan("promote", m)[0] == {"metadata": {"annotations": {"modeldeploy.io/command": "promote"}}}


def test_stale_status_is_pointed_out() -> None:
    m = mdep({"phase": "Stable", "stableVersion": "1.0.0", "stablePredictor": "v1-0-0", "observedGeneration": 1})
    assert "Note:         the operator has not yet acted on generation 2 (status is of 1)" in render_status(m, [], NOW)


def test_list_is_sorted_and_coloured_only_with_a_style() -> None:
    a = mdep({"phase": "Failed", "stableVersion": "1.0.0",
              "lastRollout": {"version": "2.0.0", "result": "RolledBack", "finishedAt": "2025-01-01T12:00:00Z"}})
    b = mdep({"phase": "Stable", "stableVersion": "3.0.0"})
    b["metadata"]["name"] = "alpha"
    plain = render_list([a, b], NOW)
    assert plain.splitlines()[1].split()[:3] == ["alpha", "Stable", "3.0.0"]
    assert "2.0.0 RolledBack 5m ago" in plain.splitlines()[2]
    assert "\x1b[31mRolledBack\x1b[0m" in render_list([a], NOW, Style(True)) and "\x1b" not in plain


def test_history_groups_superseded_and_orphaned_events() -> None:
    e = [EventRow(ago(600), "Normal", "StepAdvanced", "Step 2/4: 25% of traffic to 1.5.0."),  # its opener expired
         EventRow(ago(500), "Normal", "RolloutStarted", "Rolling out 2.0.0 (stable 1.0.0): added."),
         EventRow(ago(400), "Normal", "Superseded", "2.0.0 was superseded mid-rollout by 2.0.1; starting over. "
                                                    "Rolling out 2.0.1 (stable 1.0.0): added."),
         EventRow(ago(300), "Normal", "NoWinner", "Ending the A/B test of 2.0.1: no significant difference."),
         EventRow(ago(290), "Normal", "NoWinner", "2.0.1 was not adopted (...); 1.0.0 serves 100%.")]
    groups = group_rollouts(list(reversed(e)))
    assert [(g.kind, g.version, g.result, len(g.events)) for g in groups] == [
        ("earlier", "?", None, 1), ("rollout", "2.0.0", "Superseded", 1), ("rollout", "2.0.1", "NoWinner", 3)]


def test_commands_are_planned_from_the_phase() -> None:
    paused_by_operator = mdep({"phase": "Paused", "pauseReason": "errors", "candidateVersion": "2.0.0"})
    body, what = plan("resume", paused_by_operator)
    assert body == {"metadata": {"annotations": {"modeldeploy.io/command": "resume"}}}
    assert "(errors)" in what
    body, _ = plan("pause", paused_by_operator)  # a user pause on top keeps it paused when data returns
    assert body == {"spec": {"paused": True}}
    assert PLAIN.word("Pass") == "Pass"


def test_fit_cuts_lines_to_the_terminal_keeping_colour_codes() -> None:
    from modeldeploy.cli_text import fit

    assert fit("short\n" + "x" * 30, 10) == "short\n" + "x" * 9 + "…"
    coloured = Style(True).word("Progressing") + " and more text"
    cut = fit(coloured, 8)
    assert cut == "\x1b[36mProgres\x1b[0m…"


def test_an_unreachable_api_server_is_an_error_that_names_it(tmp_path, capsys) -> None:
    import time

    import yaml

    from modeldeploy import cli
    from sandbox.processes import free_port

    server = f"https://127.0.0.1:{free_port()}"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u", "namespace": "team-a"}}]}))
    started = time.monotonic()
    assert cli.main(["list", "--kubeconfig", str(kubeconfig)]) == cli.EXIT_ERROR
    assert time.monotonic() - started < 5
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot reach the API server at {server}"), err
    assert cli.main(["list", "--kubeconfig", str(tmp_path / "missing")]) == cli.EXIT_ERROR
    assert "cannot load a kubeconfig" in capsys.readouterr().err


def test_sequential_checks_show_their_evidence_against_the_threshold() -> None:
    """Issue 16: the increase, its confidence sequence, the margins, the e-value and the
    e-value that fails the check, for each sequential check (a per-window check has none)."""
    checks = [{"name": "p99", "outcome": "Inconclusive", "message": "collecting", "method": "sequential",
               "baseline": 120.0, "candidate": 131.0, "threshold": 303.03, "n_baseline": 900, "n_candidate": 100,
               "e_value": 17.4, "alpha": 0.0033, "estimate": 0.234, "lower": -0.087, "upper": 0.668, "margin": 0.0,
               "pass_margin": 1.074},
              {"name": "outputs", "outcome": "Pass", "message": "no shift", "method": "sequential", "threshold": 303.03,
               "e_value": 0.42, "estimate": 0.031, "margin": 0.05},
              {"name": "custom", "outcome": "Pass", "message": "ok", "candidate": 0.5, "threshold": 1.0}]
    out = render_status(mdep({"phase": "Progressing", "candidateWeight": 10, "stableVersion": "1.0.0",
                              "candidateVersion": "2.0.0", "lastAnalysis": {"outcome": "Inconclusive",
                                                                            "time": "2025-01-01T12:04:40Z",
                                                                            "checks": checks}}), [], NOW)
    print(out)
    assert re.search(r"^  CHECK +INCREASE +CONFIDENCE SEQUENCE +TOLERANCE +PASS BELOW +E-VALUE +FAILS AT$", out, re.M)
    assert re.search(r"^  p99 +0\.234 +\[-0\.087, 0\.668\] +0 +1\.074 +17\.4 +303$", out, re.M)
    assert re.search(r"^  outputs +0\.031 +- +0\.05 +- +0\.42 +303$", out, re.M)
    assert not re.search(r"^  custom +[-\d]", out.split("E-VALUE", 1)[1], re.M)
