"""`kubectl modeldeploy` against real objects on the API server: output and exit codes.

The operator is not running: each test writes the status (and events) the operator would
have written, then reads them back through the plugin."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time

import pytest

from modeldeploy import cli

from .conftest import PROGRESSING, REPO, STABLE, status

pytestmark = pytest.mark.cluster

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_list_shows_phase_versions_weight_step_and_verdict(rollouts, run) -> None:
    rollouts.create("digits", PROGRESSING)
    rollouts.create("iris", STABLE)
    r = run("list")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].split() == ["NAME", "PHASE", "STABLE", "CANDIDATE", "WEIGHT", "STEP", "VERDICT", "LAST", "ROLLOUT",
                                "AGE"]
    assert lines[1].split()[:7] == ["digits", "Progressing", "1.0.0", "2.0.0", "25%", "2/4", "Fail"]
    assert lines[2].split()[:7] == ["iris", "Stable", "2.0.0", "-", "-", "-", "-"]
    assert "2.0.0 Promoted" in lines[2]
    assert not ANSI.search(r.out), "no colour when stdout is not a terminal"


def test_list_across_namespaces_adds_the_namespace_column(rollouts, run) -> None:
    rollouts.create("digits", PROGRESSING)
    r = run("list", "-A")
    assert r.code == 0, r.err
    header, *rows = r.out.splitlines()
    assert header.split()[:2] == ["NAMESPACE", "NAME"]
    assert any(row.split()[:3] == [rollouts.namespace, "digits", "Progressing"] for row in rows)


def test_list_of_an_empty_namespace_says_so(rollouts, run) -> None:
    r = run("list")
    assert r.code == 0 and r.out == ""
    assert r.err.strip() == f'No ModelDeployments found in namespace "{rollouts.namespace}".'


def test_status_shows_weights_checks_with_their_numbers_and_recent_events(rollouts, run) -> None:
    rollouts.create("digits", PROGRESSING)
    rollouts.event("digits", "RolloutStarted", "Rolling out 2.0.0 (stable 1.0.0): candidate predictor v2-0-0 added.")
    rollouts.event("digits", "AnalysisFail", "Analysis of 2.0.0 at 25%: Fail: errors Fail: error rate 4.2%", "Warning")
    r = run("status", "digits")
    assert r.code == 0, r.err
    out = r.out
    print(out)
    assert f"Name:         digits  (namespace {rollouts.namespace})" in out
    assert "\nPhase:        Progressing\n" in out
    assert "Step:         2/4 at 25%, for " in out and "(stepDuration 1m; steps 10, 25, 50, 100)" in out
    assert "Counters:     failed 1/2  inconclusive 0/6  errors 0/4" in out
    assert "Last rollout: 1.0.0 Promoted" in out and "all 3 steps passed analysis" in out
    # traffic: both predictors with their weights
    assert re.search(r"^  stable +v1-0-0 +1\.0\.0 +75%", out, re.M)
    assert re.search(r"^  candidate +v2-0-0 +2\.0\.0 +25%", out, re.M)
    # checks: verdicts and the numbers behind them
    assert re.search(r"^Analysis Fail, .* ago \(2025-01-01T12:04:40Z\)$", out, re.M)
    assert re.search(r"^  CHECK +VERDICT +BASELINE +CANDIDATE +THRESHOLD +N \(B/C\) +STATISTIC +P-VALUE$", out, re.M)
    assert re.search(r"^  p99 +Pass +120 +131\.2 +250 +1840/612 +0\.9 +0\.41$", out, re.M)
    assert re.search(r"^  errors +Fail +0\.001 +0\.042 +0\.01 +1840/612 +6\.1 +1\.2e-09$", out, re.M)
    assert "  errors: error rate 4.2% vs 0.1% (max 1%), p=1.2e-09" in out
    # events, oldest first, with their type
    events = out.split("\nEvents\n", 1)[1]
    assert re.search(r"RolloutStarted +Rolling out 2\.0\.0.*\n.*Warning +AnalysisFail +Analysis of 2\.0\.0", events)
    assert "Next:" in out and "kubectl modeldeploy promote digits" in out
    assert not ANSI.search(out)


def test_status_colours_only_when_asked_or_on_a_terminal(rollouts, run) -> None:
    rollouts.create("digits", PROGRESSING)
    r = run("status", "digits", "--color", "always")
    assert "\x1b[36mProgressing\x1b[0m" in r.out and "\x1b[31mFail\x1b[0m" in r.out
    assert ANSI.sub("", r.out) == run("status", "digits").out  # the same text, colour aside


def test_status_of_a_deployment_without_status_points_at_the_operator(rollouts, run) -> None:
    rollouts.create("digits")
    r = run("status", "digits")
    assert r.code == 0
    assert "no status yet: is the operator running and watching this namespace?" in r.out
    assert "Events\n  <none>" in r.out


def test_missing_object_exits_3_with_a_clear_message(rollouts, run) -> None:
    for argv in (["status", "nope"], ["history", "nope"], ["promote", "nope"], ["pause", "nope"]):
        r = run(*argv)
        assert r.code == cli.EXIT_NOT_FOUND == 3, (argv, r)
        assert r.err.startswith(f'error: ModelDeployment "nope" not found in namespace "{rollouts.namespace}"'), r.err


def test_forbidden_exits_4_and_says_which_permission_is_missing(rollouts, run, forbidden_kubeconfig) -> None:
    rollouts.create("digits", PROGRESSING)
    for argv in (["status", "digits"], ["list"], ["abort", "digits"]):
        r = run(*argv, *forbidden_kubeconfig())
        assert r.code == cli.EXIT_FORBIDDEN == 4, (argv, r)
        assert r.err.startswith("error: forbidden: "), r.err
        assert 'User "nobody" cannot' in r.err and "modeldeployments" in r.err, r.err
    assert "modeldeploy.io/command" not in rollouts.annotations("digits")


def test_promote_and_abort_set_the_command_annotation(rollouts, run) -> None:
    rollouts.create("digits", PROGRESSING)
    r = run("promote", "digits")
    assert r.code == 0, r.err
    assert r.out.startswith(f"promote: asked {rollouts.namespace}/digits to promote 2.0.0 now")
    assert rollouts.annotations("digits")["modeldeploy.io/command"] == "promote"
    assert "Command:      modeldeploy.io/command=promote (waiting for the operator" in run("status", "digits").out
    r = run("abort", "digits")
    assert r.code == 0
    assert "replaced the pending command 'promote'" in r.err
    assert rollouts.annotations("digits")["modeldeploy.io/command"] == "abort"


def test_commands_outside_a_rollout_exit_5_and_change_nothing(rollouts, run) -> None:
    rollouts.create("digits", STABLE)
    before = rollouts.objs.mdep("digits")
    for command in ("promote", "abort", "pause", "resume", "retry"):
        r = run(command, "digits")
        assert r.code == cli.EXIT_STATE == 5, (command, r)
        want = "nothing to retry" if command == "retry" else "no rollout in progress"
        assert r.err.startswith(f"error: {want}: {rollouts.namespace}/digits is Stable, stable 2.0.0"), r.err
    after = rollouts.objs.mdep("digits")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_pause_is_durable_and_resume_ends_both_kinds_of_pause(rollouts, run) -> None:
    rollouts.create("digits", PROGRESSING)
    r = run("pause", "digits")
    assert r.code == 0, r.err
    m = rollouts.objs.mdep("digits")
    assert m["spec"]["paused"] is True and "modeldeploy.io/command" not in (m["metadata"].get("annotations") or {})
    assert run("pause", "digits").err.startswith("error: already paused: spec.paused is true")
    # the operator pauses; resume clears spec.paused and sends the resume command in one patch
    rollouts.set_status("digits", status(PROGRESSING, phase="Paused", pauseReason="user"))
    assert "Paused:       spec.paused is true" in run("status", "digits").out
    assert run("resume", "digits").code == 0
    m = rollouts.objs.mdep("digits")
    assert m["spec"]["paused"] is False and m["metadata"]["annotations"]["modeldeploy.io/command"] == "resume"
    # a pause the operator took itself (no data) is ended by the command alone
    rollouts.objs.patch_mdep("digits", {"metadata": {"annotations": {"modeldeploy.io/command": None}}})
    rollouts.set_status("digits", status(PROGRESSING, phase="Paused", pauseReason="inconclusive"))
    assert "not enough requests to judge the candidate" in run("status", "digits").out
    assert run("resume", "digits").code == 0
    assert rollouts.annotations("digits")["modeldeploy.io/command"] == "resume"
    # resuming a rollout that is not paused is refused
    rollouts.set_status("digits", status(PROGRESSING))
    r = run("resume", "digits")
    assert r.code == 5 and r.err.startswith("error: not paused:"), r.err


def test_retry_only_after_a_failed_rollout(rollouts, run) -> None:
    failed = status(STABLE, phase="Failed", stableVersion="1.0.0", stablePredictor="v1-0-0",
                    lastRollout={"version": "2.0.0", "result": "RolledBack", "reason": "2 failed analyses",
                                 "finishedAt": "2025-01-01T12:10:00Z"})
    rollouts.create("digits", failed)
    r = run("status", "digits")
    assert "2.0.0 RolledBack" in r.out and "kubectl modeldeploy retry digits" in r.out
    assert run("promote", "digits").code == 5
    r = run("retry", "digits")
    assert r.code == 0, r.err
    assert "roll out 2.0.0 again from the first step" in r.out
    assert rollouts.annotations("digits")["modeldeploy.io/command"] == "retry"


def test_wait_reports_what_the_operator_did(rollouts, run) -> None:
    """--wait returns once the annotation is consumed and prints the operator's event (a
    thread plays the operator here; test_metrics_scrape runs the real one)."""
    rollouts.create("digits", PROGRESSING)

    def operator() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if rollouts.annotations("digits").get("modeldeploy.io/command") == "promote":
                rollouts.event("digits", "CommandPromote", "modeldeploy.io/command=promote: refused: 2.0.0 is not "
                                                           "ready, and an unready model never gets traffic.")
                rollouts.objs.patch_mdep("digits", {"metadata": {"annotations": {"modeldeploy.io/command": None}}})
                return
            time.sleep(0.1)

    t = threading.Thread(target=operator, daemon=True)
    t.start()
    r = run("promote", "digits", "--wait", "--wait-timeout", "10")
    t.join()
    assert r.code == 0, r.err
    assert "Normal CommandPromote: modeldeploy.io/command=promote: refused: 2.0.0 is not ready" in r.out
    # nobody acts: --wait gives up with a hint
    r = run("abort", "digits", "--wait", "--wait-timeout", "1")
    assert r.code == cli.EXIT_TIMEOUT == 7 and "the operator did not act on abort within 1s: is it running" in r.err


def test_history_groups_events_by_rollout(rollouts, run) -> None:
    failed_then_promoted = status(STABLE, lastRollout={"version": "2.0.0", "result": "Promoted",
                                                       "reason": "all 3 steps passed analysis",
                                                       "finishedAt": "2025-01-01T12:10:00Z"})
    rollouts.create("digits", failed_then_promoted)
    for reason, message, type_ in [
        ("Deploying", "Deploying 1.0.0 with 100% of traffic.", "Normal"),
        ("Available", "1.0.0 is available and serves 100% of traffic.", "Normal"),
        ("RolloutStarted", "Rolling out 2.0.0 (stable 1.0.0): candidate predictor v2-0-0 added.", "Normal"),
        ("StepAdvanced", "2.0.0 is ready; step 1/4: 10% of traffic.", "Normal"),
        ("AnalysisFail", "Analysis of 2.0.0 at 10%: Fail: errors Fail: error rate 4.2%", "Warning"),
        ("RollingBack", "Rolling back 2.0.0: 2 failed analyses. All traffic returns to 1.0.0.", "Warning"),
        ("RolledBack", "2.0.0 was rolled back (2 failed analyses); 1.0.0 serves 100%.", "Warning"),
        ("CommandRetry", "modeldeploy.io/command=retry: retrying the rollout of 2.0.0.", "Normal"),
        ("RolloutStarted", "Retry: Rolling out 2.0.0 (stable 1.0.0): candidate predictor v2-0-0 added.", "Normal"),
        ("Promoting", "Promoting 2.0.0: all 3 steps passed analysis.", "Normal"),
        ("Promoted", "2.0.0 is now stable and serves 100% of traffic.", "Normal"),
    ]:
        rollouts.event("digits", reason, message, type_)
    r = run("history", "digits")
    assert r.code == 0, r.err
    print(r.out)
    assert r.out.startswith("Name: digits  (namespace ")
    assert "Last rollout: 2.0.0 Promoted at 2025-01-01T12:10:00Z" in r.out
    heads = [line for line in r.out.splitlines() if line and not line.startswith((" ", "Name", "Last", "From"))]
    assert [re.sub(r",.*", "", h) for h in heads] == [
        "Deployment of 1.0.0: Available", "Rollout of 2.0.0 (stable 1.0.0): RolledBack",
        "Rollout of 2.0.0 (stable 1.0.0): Promoted"]
    blocks = r.out.split("\nRollout of ")
    assert "AnalysisFail" in blocks[1] and "RolledBack" in blocks[1] and "Promoted" not in blocks[1]
    assert "Promoting" in blocks[2] and "AnalysisFail" not in blocks[2]


def test_status_watch_prints_each_change_and_exits_when_done(rollouts, tmp_path) -> None:
    """`kubectl modeldeploy status --watch` as a kubectl plugin (the console script on
    PATH) when kubectl is there, else `python -m modeldeploy.cli`."""
    rollouts.create("digits", PROGRESSING)
    kubectl, plugin = shutil.which("kubectl"), shutil.which("kubectl-modeldeploy")
    argv = [kubectl, "modeldeploy"] if kubectl and plugin else [sys.executable, "-m", "modeldeploy.cli"]
    argv += ["status", "digits", "-n", rollouts.namespace, "--watch", "--interval", "0.3", "--exit-when-done",
             "--timeout", "30"]
    env = {**os.environ, "KUBECONFIG": str(rollouts.kubeconfig)}
    err = tmp_path / "stderr"
    with err.open("w") as err_file:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err_file, text=True, env=env, cwd=REPO)
    try:
        first = proc.stdout.readline()
        assert first.startswith("--- "), first + err.read_text()
        time.sleep(0.5)
        # (not Paused: --exit-when-done ends on a pause, exit code 8, see test_cli_scripting)
        rollouts.set_status("digits", status(PROGRESSING, phase="Promoting", candidateWeight=100, step=3))
        time.sleep(1.0)
        rollouts.set_status("digits", STABLE)
        out = first + proc.stdout.read()  # until it exits (--exit-when-done, or --timeout)
        proc.wait(10)
    finally:
        proc.kill()
    print(out)
    assert proc.returncode == 0, err.read_text()
    phases = re.findall(r"^Phase: +(\S+)", out, re.M)
    assert phases == ["Progressing", "Promoting", "Stable"], phases
    assert out.count("\n--- ") + out.startswith("--- ") == 3


def test_watch_exits_6_when_the_rollout_was_not_promoted(rollouts, run) -> None:
    failed = status(STABLE, phase="Failed", lastRollout={"version": "3.0.0", "result": "RolledBack",
                                                         "reason": "p99 too slow", "finishedAt": "2025-01-01T12:10:00Z"})
    rollouts.create("digits", failed)
    r = run("status", "digits", "--watch", "--exit-when-done", "--interval", "0.1")
    assert r.code == cli.EXIT_NOT_PROMOTED == 6
    assert "Phase:        Failed" in r.out


@pytest.mark.parametrize("argv", [["status"], ["frobnicate", "x"]])
def test_usage_errors_exit_2(argv, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2


def test_watch_on_a_terminal_redraws_one_screen_in_colour(rollouts, run, monkeypatch) -> None:
    rollouts.create("digits", PROGRESSING)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setattr(shutil, "get_terminal_size", lambda *a, **k: os.terminal_size((60, 40)))
    r = run("status", "digits", "--watch", "--interval", "0.2", "--timeout", "0.5")
    assert r.code == 0, r.err
    screens = r.out.split("\x1b[H\x1b[2J")[1:]
    assert len(screens) >= 2
    assert "\x1b[36mProgressing\x1b[0m" in screens[0]
    assert all(len(ANSI.sub("", line)) <= 60 for line in screens[0].splitlines())
