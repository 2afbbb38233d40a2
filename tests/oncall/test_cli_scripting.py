"""`kubectl modeldeploy` in scripts: -o json|yaml, exit codes that tell a promotion, a
rollback, a timeout and a pause apart, durations, --version, and a plugin that installs
without the operator's dependencies."""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
import time
import tomllib

import pytest
import yaml
from packaging.requirements import Requirement

from modeldeploy import __version__, cli
from modeldeploy.cli_data import FROM_EVENTS, FROM_STATUS, history_doc, status_history

from .conftest import PROGRESSING, REPO, STABLE, status

FAILED = status(STABLE, phase="Failed", lastRollout={"version": "3.0.0", "result": "RolledBack",
                                                     "reason": "p99 too slow", "finishedAt": "2025-01-01T12:10:00Z"})
PAUSED = status(PROGRESSING, phase="Paused", pauseReason="command", pausedFrom="Progressing")


@pytest.mark.cluster
def test_list_and_status_print_json_and_yaml_documents(rollouts, run) -> None:
    rollouts.create("digits", PROGRESSING)
    rollouts.create("mnist", STABLE)
    rollouts.event("digits", "StepAdvanced", "Step 2/4: 25% of traffic to 2.0.0.")
    r = run("list", "-o", "json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["kind"] == "ModelDeploymentList"
    assert [(i["name"], i["phase"], i["candidateWeight"], i["step"], i["verdict"]) for i in doc["items"]] == [
        ("digits", "Progressing", 25, "2/4", "Fail"), ("mnist", "Stable", None, None, None)]
    r = run("status", "digits", "-o", "yaml")
    assert r.code == 0, r.err
    doc = yaml.safe_load(r.out)
    assert doc["kind"] == "ModelDeploymentStatus" and doc["phase"] == "Progressing"
    assert doc["status"]["lastAnalysis"]["checks"][1]["candidate"] == 0.042
    assert [e["reason"] for e in doc["events"]] == ["StepAdvanced"]
    assert json.loads(run("status", "digits", "-o", "json").out)["spec"]["model"]["version"] == "2.0.0"


@pytest.mark.cluster
def test_history_from_events_when_the_operator_keeps_no_status_history(rollouts, run) -> None:
    rollouts.create("digits", FAILED)
    for reason, message in [("RolloutStarted", "Rolling out 3.0.0 (stable 2.0.0): candidate predictor v3 added."),
                            ("RollingBack", "Rolling back 3.0.0: p99 too slow."),
                            ("RolledBack", "3.0.0 was rolled back (p99 too slow); 2.0.0 serves 100%.")]:
        rollouts.event("digits", reason, message)
    doc = json.loads(run("history", "digits", "-o", "json").out)
    assert doc["source"] == FROM_EVENTS == "events"
    (rollout,) = doc["rollouts"]
    assert (rollout["version"], rollout["stable"], rollout["result"]) == ("3.0.0", "2.0.0", "RolledBack")
    assert [e["reason"] for e in rollout["entries"]] == ["RolloutStarted", "RollingBack", "RolledBack"]
    assert yaml.safe_load(run("history", "digits", "-o", "yaml").out) == doc


def test_history_prefers_status_history_ordered_by_seq() -> None:
    mdep = {"metadata": {"name": "digits", "namespace": "ml"}, "status": {"phase": "Stable", "history": [
        {"seq": 8, "time": "2025-01-01T12:02:00Z", "type": "Normal", "reason": "Promoted", "message": "2.0.0 is stable"},
        {"seq": 6, "time": "2025-01-01T12:00:00Z", "type": "Normal", "reason": "RolloutStarted",
         "message": "Rolling out 2.0.0 (stable 1.0.0): candidate predictor v2 added."},
        {"seq": 7, "time": "2025-01-01T12:01:00Z", "type": "Normal", "reason": "StepAdvanced", "message": "step 1/4"},
    ]}}
    rows = status_history(mdep)
    assert [r.reason for r in rows] == ["RolloutStarted", "StepAdvanced", "Promoted"]
    doc = history_doc(mdep, rows, FROM_STATUS)
    assert doc["source"] == "status.history"
    assert [(g["version"], g["result"], g["started"], g["finished"]) for g in doc["rollouts"]] == [
        ("2.0.0", "Promoted", "2025-01-01T12:00:00Z", "2025-01-01T12:02:00Z")]
    assert status_history({"status": {"phase": "Stable"}}) is None


@pytest.mark.cluster
def test_history_reads_status_history_from_the_api_server_before_events(rollouts, run) -> None:
    history = [{"seq": 1, "time": "2025-01-01T12:00:00Z", "type": "Normal", "reason": "RolloutStarted",
                "message": "Rolling out 2.0.0 (stable 1.0.0): candidate predictor v2-0-0 added."},
               {"seq": 2, "time": "2025-01-01T12:05:00Z", "type": "Normal", "reason": "Promoted",
                "message": "2.0.0 is now stable and serves 100% of traffic."}]
    rollouts.create("digits", status(STABLE, history=history))
    rollouts.event("digits", "Deploying", "Deploying 0.9.0 with 100% of traffic.")  # not what history shows
    doc = json.loads(run("history", "digits", "-o", "json").out)
    assert doc["source"] == "status.history"
    assert [(g["version"], g["result"]) for g in doc["rollouts"]] == [("2.0.0", "Promoted")]
    text = run("history", "digits").out
    assert "From status.history" in text and "Rollout of 2.0.0 (stable 1.0.0): Promoted" in text
    assert "0.9.0" not in text


@pytest.mark.cluster
@pytest.mark.parametrize("st,code", [(STABLE, 0), (FAILED, 6), (PAUSED, 8)], ids=["promoted", "rolled-back", "paused"])
def test_exit_when_done_tells_promoted_rolled_back_and_paused_apart(rollouts, run, st, code) -> None:
    rollouts.create("digits", st)
    r = run("status", "digits", "--watch", "--exit-when-done", "--interval", "100ms", "--timeout", "20s")
    assert r.code == code, r.err


@pytest.mark.cluster
def test_exit_when_done_times_out_with_7_not_0(rollouts, run) -> None:
    rollouts.create("digits", PROGRESSING)
    started = time.monotonic()
    r = run("status", "digits", "--watch", "--exit-when-done", "--interval", "200ms", "--timeout", "1s", "-o", "json")
    assert r.code == cli.EXIT_TIMEOUT == 7
    assert 1.0 <= time.monotonic() - started < 10
    assert "timed out after 1s: " in r.err and "is Progressing" in r.err
    # -o json with --watch: one document per change; nothing changed, so one
    assert json.loads(r.out)["phase"] == "Progressing"
    # a pause the operator ends by itself (missing data) is watched through, not an exit 8
    rollouts.set_status("digits", status(PROGRESSING, phase="Paused", pauseReason="inconclusive"))
    r = run("status", "digits", "--watch", "--exit-when-done", "--interval", "200ms", "--timeout", "1s")
    assert r.code == cli.EXIT_TIMEOUT and "is Paused" in r.err
    # without --exit-when-done a timeout is simply the end of watching
    assert run("status", "digits", "--watch", "--interval", "200ms", "--timeout", "500ms").code == 0


@pytest.mark.parametrize("text,seconds", [("3s", 3), ("2m", 120), ("1m30s", 90), ("500ms", 0.5), ("45", 45),
                                          ("0.25", 0.25)])
def test_every_time_on_the_command_line_takes_a_duration(text, seconds) -> None:
    p = cli.build_parser()
    assert p.parse_args(["status", "x", "--timeout", text]).timeout == seconds
    assert p.parse_args(["status", "x", "--interval", text]).interval == seconds
    assert p.parse_args(["abort", "x", "--wait-timeout", text]).wait_timeout == seconds


@pytest.mark.parametrize("text", ["3x", "-5", "m", ""])
def test_a_bad_duration_is_a_usage_error_naming_the_flag(text, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["status", "x", "--timeout", text])
    assert e.value.code == cli.EXIT_USAGE
    assert "--timeout" in capsys.readouterr().err


def test_version() -> None:
    out = subprocess.run([sys.executable, "-m", "modeldeploy.cli", "--version"], capture_output=True, text=True,
                         check=True, cwd=REPO).stdout
    assert out.strip() == f"kubectl-modeldeploy {__version__}"


def test_the_plugin_imports_neither_kopf_nor_the_statistics() -> None:
    """What `pip install modeldeploy[cli]` must cover: the plugin's whole import graph."""
    code = ("import sys, modeldeploy.cli; "
            "print(sorted({m.split('.')[0] for m in sys.modules if not m.startswith('_')}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO).stdout
    loaded = set(eval(out))  # noqa: S307 - our own subprocess's repr of a list of names
    heavy = {"kopf", "scipy", "numpy", "prometheus_api_client", "prometheus_client", "pandas", "aiohttp"}
    assert not loaded & heavy, sorted(loaded & heavy)
    third_party = loaded - set(sys.stdlib_module_names) - {"modeldeploy", "cython_runtime"}
    assert {"kubernetes", "yaml"} <= third_party
    allowed = dependency_closure(tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["cli"])
    owners = importlib.metadata.packages_distributions()
    outside = {m for m in third_party if not {canonical(d) for d in owners.get(m, [])} & allowed}
    assert not outside, f"the plugin imports modules the cli extra does not install: {sorted(outside)}"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def dependency_closure(requirements: list[str]) -> set[str]:
    """The distributions `pip install` brings for these requirements (from the installed
    metadata; extras and environment markers that do not apply are skipped)."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = canonical(req.name)
        if name in seen or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        todo += [Requirement(r) for r in importlib.metadata.requires(req.name) or []]
    return seen
