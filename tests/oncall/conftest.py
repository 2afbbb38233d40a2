"""Fixtures of the on-call tooling tests: ModelDeployments whose status the test writes
itself through the status subresource (no operator needed), events posted the way the
operator posts them, and the plugin run in-process with its output captured."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from modeldeploy import GROUP, PLURAL, VERSION, cli
from modeldeploy.kube import Kube
from sandbox.harness import Objects

REPO = Path(__file__).resolve().parents[2]


def mdep_body(name: str = "digits", version: str = "2.0.0", **spec: Any) -> dict[str, Any]:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"name": "digits", "version": version, "uri": f"file:///models/digits/{version}"},
            "strategy": {"canary": {"steps": [10, 25, 50, 100], "stepDuration": "1m"}},
            "analysis": {"interval": "30s", "metrics": [{"name": "p99", "latency": {"maxMs": 250}},
                                                         {"name": "errors", "errorRate": {"max": 0.01}}]},
        },
    }
    body["spec"].update(spec)
    return body


CHECKS = [
    {"name": "p99", "outcome": "Pass", "message": "p99 131ms vs baseline 120ms (limit 250ms): not significantly slower",
     "baseline": 120.0, "candidate": 131.2, "threshold": 250.0, "n_baseline": 1840, "n_candidate": 612,
     "statistic": 0.9, "p_value": 0.41},
    {"name": "errors", "outcome": "Fail", "message": "error rate 4.2% vs 0.1% (max 1%), p=1.2e-09",
     "baseline": 0.001, "candidate": 0.042, "threshold": 0.01, "n_baseline": 1840, "n_candidate": 612,
     "statistic": 6.1, "p_value": 1.2e-09},
]

PROGRESSING = {
    "phase": "Progressing", "message": "Step 2/4: 25% of traffic to 2.0.0.",
    "stableVersion": "1.0.0", "stablePredictor": "v1-0-0", "candidateVersion": "2.0.0", "candidatePredictor": "v2-0-0",
    "candidateWeight": 25, "shadow": False, "step": 1, "stepStartedAt": "2025-01-01T12:04:20Z",
    "rolloutStartedAt": "2025-01-01T12:01:00Z", "counters": {"failed": 1, "inconclusive": 0, "errors": 0},
    "lastAnalysis": {"time": "2025-01-01T12:04:40Z", "outcome": "Fail", "message": "Fail: ...", "checks": CHECKS},
    "lastRollout": {"version": "1.0.0", "result": "Promoted", "reason": "all 3 steps passed analysis",
                    "finishedAt": "2025-01-01T11:00:00Z"},
    "conditions": [{"type": "Ready", "status": "True", "reason": "Available", "message": "1.0.0 is serving",
                    "lastTransitionTime": "2025-01-01T10:00:00Z"}],
    "observedGeneration": 1,
}
STABLE = {
    "phase": "Stable", "message": "2.0.0 is now stable and serves 100% of traffic.", "stableVersion": "2.0.0",
    "stablePredictor": "v2-0-0", "candidateWeight": 0, "step": 0,
    # null deletes in a merge patch: what the operator writes when a rollout ends
    "candidateVersion": None, "candidatePredictor": None, "stepStartedAt": None, "pauseReason": None,
    "counters": {"failed": 0, "inconclusive": 0, "errors": 0},
    "lastRollout": {"version": "2.0.0", "result": "Promoted", "reason": "promoted by a user",
                    "finishedAt": "2025-01-01T12:10:00Z"},
    "observedGeneration": 1,
}


def status(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(base)
    out.update(changes)
    return out


@dataclass
class Rollouts:
    """ModelDeployments with hand-written status, in one namespace."""

    objs: Objects
    kube: Kube
    kubeconfig: Path

    @property
    def namespace(self) -> str:
        return self.objs.namespace

    def create(self, name: str = "digits", st: dict[str, Any] | None = None, version: str = "2.0.0",
               **spec: Any) -> dict[str, Any]:
        self.objs.apply_mdep(mdep_body(name, version, **spec))
        if st is not None:
            self.set_status(name, st)
        return self.objs.mdep(name)

    def set_status(self, name: str, st: dict[str, Any]) -> None:
        self.objs.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, self.namespace, PLURAL, name, {"status": st})

    def event(self, name: str, reason: str, message: str, type_: str = "Normal") -> None:
        self.kube.post_event(self.objs.mdep(name), type_, reason, message)

    def annotations(self, name: str) -> dict[str, str]:
        return self.objs.mdep(name)["metadata"].get("annotations") or {}


@pytest.fixture
def rollouts(cluster, api, crds, namespace) -> Rollouts:
    return Rollouts(Objects(api, namespace), Kube(api), cluster.kubeconfig)


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def run(rollouts, capsys) -> Callable[..., Result]:
    """`kubectl modeldeploy ARGS -n <the test's namespace>`, in-process."""

    def go(*args: str, kubeconfig: Path | None = None, namespace: str | None = None) -> Result:
        capsys.readouterr()
        argv = list(args)
        if "--kubeconfig" not in args:
            argv += ["--kubeconfig", str(kubeconfig or rollouts.kubeconfig)]
        if "-A" not in args:
            argv += ["-n", namespace or rollouts.namespace]
        code = cli.main(argv)
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return go


@pytest.fixture
def forbidden_kubeconfig(cluster, tmp_path) -> Callable[..., list[str]]:
    """CLI arguments that act as a user with no rights: a client certificate on the local
    control plane, impersonation (--as) on an existing cluster."""
    if cluster.plane is not None:
        path = cluster.plane.user_kubeconfig("nobody")
        return lambda: ["--kubeconfig", str(path)]
    return lambda: ["--kubeconfig", str(cluster.kubeconfig), "--as", "nobody"]
