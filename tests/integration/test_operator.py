"""The operator as shipped (`python -m modeldeploy`, a subprocess) on the real API server,
with a test helper playing Seldon's controller."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time

import pytest

from sandbox.harness import SDEP, Objects, operator_process, wait_for

from .seldon_player import SeldonPlayer
from .tape import follow


def mdep(version: str, **spec) -> dict:
    body = {
        "apiVersion": "modeldeploy.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "digits"},
        "spec": {
            "model": {"name": "digits", "version": version, "uri": f"file:///models/digits/{version}"},
            "strategy": {"canary": {"steps": [20, 50, 100], "stepDuration": "2s"}, "progressDeadline": "20s"},
            "analysis": {"interval": "1s"},
        },
    }
    body["spec"].update(spec)
    return body


@pytest.fixture
def objs(api, crds, namespace) -> Objects:
    return Objects(api, namespace)


@pytest.fixture
def seldon(api, namespace):
    with SeldonPlayer(api, namespace) as player:
        yield player


@pytest.fixture
def operator(cluster, namespace, tmp_path):
    proc = operator_process(cluster.kubeconfig, tmp_path / "operator.log", [namespace]).start()
    yield proc
    # SIGKILL, not SIGTERM: the test is over, and Kopf's graceful shutdown costs ~5 s a test
    # (the chart's tests, which check the operator's log through its shutdown, stop it).
    proc.kill()
    print(f"--- operator log ({proc.log_path}) ---\n{proc.log_path.read_text()[-4000:]}")


class TrafficRecorder:
    """Records every routing the SeldonDeployment goes through (a watch: a state that lasts
    milliseconds, like Promoting's 0/100 before the old predictor goes, is seen too)."""

    def __init__(self, objs: Objects, name: str) -> None:
        self.objs, self.name, self.seen = objs, name, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _record(self, sd: dict) -> None:
        t = {p["labels"]["version"]: (-1 if p.get("shadow") else p.get("traffic", 0))
             for p in (sd.get("spec") or {}).get("predictors", [])}
        if t and (not self.seen or self.seen[-1] != t):
            self.seen.append(t)

    def _run(self) -> None:
        follow(self.objs, SDEP, self.name, self._stop, self._record)

    def __enter__(self) -> TrafficRecorder:
        self._thread.start()
        time.sleep(0.5)  # the watch is established before the test changes anything
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(3)

    def weights_of(self, version: str) -> list[int]:
        out = []
        for t in self.seen:
            if version in t and (not out or out[-1] != t[version]):
                out.append(t[version])
        return out


def phase_is(objs: Objects, phase: str, version: str | None = None):
    def probe():
        st = objs.status("digits")
        return st if st.get("phase") == phase and (version is None or st.get("stableVersion") == version) else None
    return probe


def test_new_model_deployment_becomes_stable_with_one_predictor(objs, seldon, operator) -> None:
    created = objs.apply_mdep(mdep("1.0.0"))
    st = wait_for("phase Stable", phase_is(objs, "Stable", "1.0.0"), 30)
    sd = objs.sdep("digits")
    (pred,) = sd["spec"]["predictors"]
    assert pred["name"] == "v1-0-0" and pred["traffic"] == 100
    assert pred["labels"] == {"version": "1.0.0"} and pred["annotations"] == {"version": "1.0.0"}
    assert pred["graph"]["modelUri"] == "file:///models/digits/1.0.0"
    owner = sd["metadata"]["ownerReferences"][0]
    assert owner["uid"] == created["metadata"]["uid"] and owner["controller"] is True
    assert st["observedGeneration"] == created["metadata"]["generation"]
    assert {c["type"]: c["status"] for c in st["conditions"]} == {"Ready": "True", "Progressing": "False"}
    reasons = [r for _, r, _ in objs.events_until("digits", "Available")]
    assert reasons[:2] == ["Deploying", "Available"]


def test_version_bump_walks_the_steps_and_promotes(objs, seldon, operator) -> None:
    objs.apply_mdep(mdep("1.0.0"))
    wait_for("phase Stable", phase_is(objs, "Stable", "1.0.0"), 30)
    with TrafficRecorder(objs, "digits") as rec:
        objs.apply_mdep(mdep("2.0.0"))
        wait_for("progressing", phase_is(objs, "Progressing"), 10)
        kubectl = shutil.which("kubectl")
        if kubectl:
            out = subprocess.run([kubectl, "get", "mdep", "-n", objs.namespace], capture_output=True, text=True,
                                 env={"KUBECONFIG": str(operator.env["KUBECONFIG"]), "PATH": "/usr/bin:/bin"})
            print(out.stdout)
            assert out.stdout.split()[:7] == ["NAME", "PHASE", "STABLE", "CANDIDATE", "WEIGHT", "VERDICT", "AGE"]
        wait_for("2.0.0 stable", phase_is(objs, "Stable", "2.0.0"), 40)
        time.sleep(0.3)
    assert rec.weights_of("2.0.0") == [0, 20, 50, 100]
    assert rec.weights_of("1.0.0") == [100, 80, 50, 0]
    assert objs.traffic("digits") == {"2.0.0": 100}
    st = objs.status("digits")
    assert st["lastRollout"]["version"] == "2.0.0" and st["lastRollout"]["result"] == "Promoted"
    reasons = [r for _, r, _ in objs.events_until("digits", "Promoted")]
    assert reasons.count("StepAdvanced") == 2
    assert reasons.index("RolloutStarted") < reasons.index("Promoting") < reasons.index("Promoted")


def test_seldon_failure_rolls_back_and_the_candidate_never_serves(objs, seldon, operator) -> None:
    objs.apply_mdep(mdep("1.0.0"))
    wait_for("phase Stable", phase_is(objs, "Stable", "1.0.0"), 30)
    # Seldon's Failed: a Deployment past its progress deadline, named by no one.
    seldon.stuck.add("2.0.0")
    with TrafficRecorder(objs, "digits") as rec:
        objs.apply_mdep(mdep("2.0.0"))
        st = wait_for("Failed", phase_is(objs, "Failed"), 30)
    assert set(rec.weights_of("2.0.0")) == {0}
    assert objs.traffic("digits") == {"1.0.0": 100}
    assert st["lastRollout"]["result"] == "RolledBack" and "no longer progressing" in st["lastRollout"]["reason"]
    # Events are posted right after the status write: wait for them, don't race them.
    events = objs.events_until("digits", "RolledBack")
    assert any(t == "Warning" and r == "RolledBack" and "no longer progressing" in m for t, r, m in events), events


def test_manual_commands_pause_resume_and_promote(objs, seldon, operator) -> None:
    objs.apply_mdep(mdep("1.0.0"))
    wait_for("phase Stable", phase_is(objs, "Stable", "1.0.0"), 30)
    objs.apply_mdep(mdep("2.0.0", paused=False, strategy={"canary": {"steps": [10, 100], "stepDuration": "1h"}}))
    wait_for("10%", lambda: objs.traffic("digits").get("2.0.0") == 10, 20)
    objs.patch_mdep("digits", {"spec": {"paused": True}})
    wait_for("Paused", phase_is(objs, "Paused"), 10)
    objs.patch_mdep("digits", {"spec": {"paused": False}})
    wait_for("resumed", phase_is(objs, "Progressing"), 10)
    objs.patch_mdep("digits", {"metadata": {"annotations": {"modeldeploy.io/command": "promote"}}})
    wait_for("2.0.0 stable", phase_is(objs, "Stable", "2.0.0"), 20)
    assert "modeldeploy.io/command" not in (objs.mdep("digits")["metadata"].get("annotations") or {})
    reasons = [r for _, r, _ in objs.events_until("digits", "Promoted")]
    assert "CommandPromote" in reasons and "Paused" in reasons and "Resumed" in reasons


def test_hand_edited_seldon_deployment_is_put_back(objs, seldon, operator) -> None:
    objs.apply_mdep(mdep("1.0.0"))
    wait_for("phase Stable", phase_is(objs, "Stable", "1.0.0"), 30)
    sd = objs.sdep("digits")
    sd["spec"]["predictors"][0]["graph"]["modelUri"] = "file:///somewhere/else"
    objs.custom.replace_namespaced_custom_object("machinelearning.seldon.io", "v1", objs.namespace,
                                                 "seldondeployments", "digits", sd)
    wait_for("drift corrected", lambda: objs.sdep("digits")["spec"]["predictors"][0]["graph"]["modelUri"]
             == "file:///models/digits/1.0.0", 10)


def test_operator_killed_mid_rollout_resumes_without_skipping_or_repeating(cluster, objs, seldon, operator) -> None:
    objs.apply_mdep(mdep("1.0.0"))
    wait_for("phase Stable", phase_is(objs, "Stable", "1.0.0"), 30)
    spec = {"strategy": {"canary": {"steps": [10, 20, 40, 60, 100], "stepDuration": "2s"}}}
    with TrafficRecorder(objs, "digits") as rec:
        objs.apply_mdep(mdep("2.0.0", **spec))
        wait_for("step 2", lambda: objs.status("digits").get("step") == 1, 30)
        operator.kill()  # SIGKILL: no clean-up runs
        time.sleep(3)  # longer than a step: a naive restart would jump ahead
        operator.start()
        wait_for("2.0.0 stable", phase_is(objs, "Stable", "2.0.0"), 60)
        time.sleep(0.3)
    assert rec.weights_of("2.0.0") == [0, 10, 20, 40, 60, 100]
    reasons = [r for _, r, _ in objs.events_until("digits", "Promoted")]
    assert reasons.count("StepAdvanced") == 4, reasons
    assert reasons.count("Promoted") == 1
