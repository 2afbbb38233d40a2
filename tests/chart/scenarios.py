"""Rollout scenarios written once and run against whatever operator and Seldon are there.

Here (test_rbac.py) the operator is a `python -m modeldeploy` subprocess holding only the
chart's service-account token, and SeldonPlayer plays Seldon's controller; on kind
(test_kind.py, hack/kind/e2e.sh) the operator is the pod `helm install` started and Seldon
Core is real. The ModelDeployment, the traffic recorder and the status probes are the
integration tests' own, so all three exercise the same objects.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.harness import Objects, wait_for
from tests.integration.test_operator import TrafficRecorder, mdep, phase_is

NAME = "digits"  # the integration tests' ModelDeployment name


@dataclass
class Promotion:
    steps: list[int]
    candidate_weights: list[int]
    stable_weights: list[int]
    status: dict[str, Any]
    traffic: dict[str, int]
    events: list[tuple[str, str, str]] = field(default_factory=list)

    def check(self) -> None:
        """A clean promotion: every step in order, none skipped or repeated, then 100 %."""
        assert self.candidate_weights == [0, *self.steps], self.candidate_weights
        assert self.stable_weights == [100, *[100 - s for s in self.steps]], self.stable_weights
        assert self.traffic == {"2.0.0": 100}
        assert self.status["phase"] == "Stable" and self.status["stableVersion"] == "2.0.0"
        assert self.status["lastRollout"]["result"] == "Promoted"
        reasons = [r for _, r, _ in self.events]
        assert reasons.count("StepAdvanced") == len(self.steps) - 1, reasons
        assert reasons.index("RolloutStarted") < reasons.index("Promoted")
        assert not [e for e in self.events if e[0] == "Warning"], self.events


def promote(objs: Objects, steps: list[int], step_duration: str = "1s", progress_deadline: str = "20s",
            model: Callable[[str], dict[str, Any]] | None = None, timeout: float = 40) -> Promotion:
    """Deploy 1.0.0, wait until Stable, change the version to 2.0.0, follow it to the end.

    `model(version)` gives spec.model (image, URI) where the default test model will not
    do (a real cluster); timeouts scale with `timeout` (the rollout's own budget).
    """
    def body(version: str) -> dict[str, Any]:
        spec: dict[str, Any] = {"strategy": {"canary": {"steps": steps, "stepDuration": step_duration},
                                             "progressDeadline": progress_deadline}}
        if model is not None:
            spec["model"] = model(version)
        return mdep(version, **spec)

    objs.apply_mdep(body("1.0.0"))
    wait_for("1.0.0 Stable", phase_is(objs, "Stable", "1.0.0"), timeout)
    with TrafficRecorder(objs, NAME) as rec:
        objs.apply_mdep(body("2.0.0"))
        wait_for("2.0.0 Stable", phase_is(objs, "Stable", "2.0.0"), timeout)
        time.sleep(0.3)  # let the recorder see the last routing
    return Promotion(steps, rec.weights_of("2.0.0"), rec.weights_of("1.0.0"), objs.status(NAME),
                     objs.traffic(NAME), objs.events_until(NAME, "Promoted"))


COMMAND = "modeldeploy.io/command"


def promote_by_command(objs: Objects, timeout: float = 30) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """Deploy 1.0.0, start 2.0.0 on a step that would last an hour, then give the on-call
    engineer's `promote` command (the annotation `kubectl modeldeploy promote` sets and the
    operator removes once obeyed). Returns status, annotations and event reasons."""
    objs.apply_mdep(mdep("1.0.0"))
    wait_for("1.0.0 Stable", phase_is(objs, "Stable", "1.0.0"), timeout)
    objs.apply_mdep(mdep("2.0.0", strategy={"canary": {"steps": [10, 100], "stepDuration": "1h"}}))
    wait_for("2.0.0 at 10%", lambda: objs.traffic(NAME).get("2.0.0") == 10, timeout)
    objs.patch_mdep(NAME, {"metadata": {"annotations": {COMMAND: "promote"}}})
    wait_for("2.0.0 Stable", phase_is(objs, "Stable", "2.0.0"), timeout)
    wait_for("the command consumed", lambda: COMMAND not in (objs.mdep(NAME)["metadata"].get("annotations") or {}),
             timeout)
    return objs.status(NAME), objs.mdep(NAME)["metadata"].get("annotations") or {}, [r for _, r, _ in objs.events_until(NAME, "Promoted")]
