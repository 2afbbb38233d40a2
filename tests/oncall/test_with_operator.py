"""The plugin and the metrics against the operator as shipped (`python -m modeldeploy`, a
subprocess), with a thread playing Seldon's controller (tests/integration)."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest

from modeldeploy import cli
from sandbox.harness import Objects, operator_process, wait_for
from sandbox.processes import free_port, port_open

from ..integration.seldon_player import SeldonPlayer
from .conftest import REPO, mdep_body

pytestmark = pytest.mark.cluster

FAST = {"strategy": {"canary": {"steps": [50, 100], "stepDuration": "1s"}, "progressDeadline": "20s"},
        "analysis": {"interval": "1s"}}
HOLD = {"strategy": {"canary": {"steps": [10, 100], "stepDuration": "1h"}, "progressDeadline": "20s"},
        "analysis": {"interval": "1s"}}


def metrics_wired() -> bool:
    """True once handlers.py serves /metrics (metrics.serve_from_env at start-up)."""
    return "metrics.serve" in (REPO / "operator" / "modeldeploy" / "handlers.py").read_text()


@pytest.fixture
def stack(cluster, api, crds, namespace, tmp_path):
    port = free_port()
    proc = operator_process(cluster.kubeconfig, tmp_path / "operator.log", [namespace],
                            env={"MODELDEPLOY_METRICS_PORT": str(port)}).start()
    try:
        with SeldonPlayer(api, namespace):
            yield Objects(api, namespace), port, proc
    finally:
        proc.kill()  # the test is over: Kopf's graceful shutdown would cost ~5 s for nothing
        print(f"--- operator log ---\n{Path(proc.log_path).read_text()[-3000:]}")


def phase(objs: Objects, want: str, version: str | None = None):
    def probe():
        st = objs.status("digits")
        return st if st.get("phase") == want and (version is None or st.get("stableVersion") == version) else None
    return probe


def test_manual_controls_against_the_running_operator(stack, cluster, capsys) -> None:
    objs, _, _ = stack
    kc = ["--kubeconfig", str(cluster.kubeconfig), "-n", objs.namespace]
    objs.apply_mdep(mdep_body("digits", "1.0.0", **HOLD))
    wait_for("Stable", phase(objs, "Stable", "1.0.0"), 30)
    objs.apply_mdep(mdep_body("digits", "2.0.0", **HOLD))
    wait_for("10%", lambda: objs.status("digits").get("candidateWeight") == 10, 20)

    def run(*argv: str) -> tuple[int, str]:
        capsys.readouterr()
        code = cli.main([*argv, *kc])
        out, err = capsys.readouterr()
        return code, out + err

    code, out = run("pause", "digits", "--wait", "--wait-timeout", "15")
    assert code == 0, out
    assert "Paused: Paused by spec.paused at 10% to 2.0.0;" in out and "is Paused" in out
    code, out = run("status", "digits")
    assert re.search(r"^Phase: +Paused \(user\)$", out, re.M), out
    code, out = run("resume", "digits", "--wait", "--wait-timeout", "15")
    assert code == 0, out
    assert "CommandResume: modeldeploy.io/command=resume: resuming." in out and "is Progressing" in out
    code, out = run("promote", "digits", "--wait", "--wait-timeout", "15")
    assert code == 0, out
    assert "CommandPromote: modeldeploy.io/command=promote: promoting now, skipping the remaining steps." in out
    wait_for("2.0.0 stable", phase(objs, "Stable", "2.0.0"), 20)
    code, out = run("promote", "digits")
    assert code == cli.EXIT_STATE and "no rollout in progress" in out
    code, out = run("history", "digits")
    assert "Rollout of 2.0.0 (stable 1.0.0): Promoted" in out, out
    for reason in ("Paused", "CommandResume", "Resumed", "CommandPromote", "Promoting", "Promoted"):
        assert reason in out


@pytest.mark.skipif(not metrics_wired(), reason="handlers.py does not call metrics.serve_from_env() yet")
def test_metrics_scraped_from_the_running_operator(stack) -> None:
    objs, port, _ = stack
    objs.apply_mdep(mdep_body("digits", "1.0.0", **FAST))
    wait_for("Stable", phase(objs, "Stable", "1.0.0"), 30)
    objs.apply_mdep(mdep_body("digits", "2.0.0", **FAST))
    wait_for("2.0.0 stable", phase(objs, "Stable", "2.0.0"), 40)
    wait_for("the metrics port", lambda: port_open(port), 10)
    sel = f'name="digits",namespace="{objs.namespace}"'

    def scrape() -> str:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()

    def sample(text: str, name: str, labels: str) -> float | None:
        m = re.search(rf"^{re.escape(name)}{{{re.escape(labels)}}} (\S+)$", text, re.M)
        return float(m.group(1)) if m else None

    def promoted() -> str | None:
        text = scrape()
        return text if sample(text, "modeldeploy_rollouts_total", f'{sel},result="Promoted"') == 1 else None

    text = wait_for("the promotion in the metrics", promoted, 10)
    assert sample(text, "modeldeploy_rollout_phase", f'{sel},phase="Stable"') == 1
    assert sample(text, "modeldeploy_rollout_phase", f'{sel},phase="Progressing"') == 0
    assert sample(text, "modeldeploy_candidate_weight", sel) == 0
    assert sample(text, "modeldeploy_ready", sel) == 1
    assert sample(text, "modeldeploy_rollouts_total", f'{sel},result="RolledBack"') == 0
    assert sample(text, "modeldeploy_events_total", f'{sel},reason="StepAdvanced",type="Normal"') == 1
    assert sample(text, "modeldeploy_analyses_total", f'{sel},outcome="Pass"') >= 1
    assert sample(text, "modeldeploy_analysis_duration_seconds_count", "") is None  # unlabelled: no braces
    assert re.search(r"^modeldeploy_analysis_duration_seconds_count \d", text, re.M)
    assert sample(text, "modeldeploy_reconcile_last_success_timestamp_seconds", sel) > 0
    assert re.search(r'^modeldeploy_operator_info\{version="[^"]+"\} 1\.0$', text, re.M)
    assert re.search(r'^modeldeploy_metric_query_errors_total\{kind="unreachable"\} 0\.0$', text, re.M)
    # deleting the object removes its series
    objs.custom.delete_namespaced_custom_object("modeldeploy.io", "v1alpha1", objs.namespace, "modeldeployments",
                                                "digits")
    wait_for("series removed", lambda: f'namespace="{objs.namespace}"' not in scrape(), 15)
