"""Rollout scenarios: apply 1.0.0, wait for Stable, roll out a candidate under load, and
follow it to the end, recording a timeline.

Shared by the demo (`sandbox.demo`) and the end-to-end tests; the kind workflow runs the
same functions against a real cluster.
"""

from __future__ import annotations

import time
from collections.abc import Callable
import copy
from dataclasses import dataclass, field
from typing import Any

from modeldeploy.state import parse_time

from .harness import wait_for
from .seldon_standin import deployment_name
from .stack import Stack

# Short intervals so that a scenario takes about a minute; the statistics are the
# operator's defaults except where named.
ANALYSIS: dict[str, Any] = {
    "interval": "5s",
    "window": "20s",
    "minSamples": 50,
    "failureLimit": 2,
    "inconclusiveLimit": 6,
    "errorLimit": 3,
    "metrics": [
        # Up to 25 % slower is acceptable, as a user would state it: the candidates are
        # different models, and a sequential test with no tolerance would, given enough
        # requests, fail a candidate that is genuinely a few percent slower.
        {"name": "p99", "latency": {"quantile": 0.99, "maxMs": 250, "maxIncrease": 0.25}},
        {"name": "errors", "errorRate": {"max": 0.05}},
        {"name": "outputs", "outputDistribution": {"maxJensenShannon": 0.1}},
    ],
}
STRATEGY: dict[str, Any] = {"canary": {"steps": [20, 50, 100], "stepDuration": "15s"}, "progressDeadline": "90s"}
# 99.9 %: an A/A test then names a false winner once in a thousand runs, not once in 20,
# and a 10-point accuracy gain at 300 feedback per version still clears it (z ~ 5).
AB_TEST: dict[str, Any] = {"type": "ABTest",
                           "abTest": {"split": 50, "minSamples": 300, "maxDuration": "3m", "confidence": 0.999},
                           "progressDeadline": "90s"}
# A shadow's agreement with the response users got, from the stand-in router's pairing
# (a custom query check: the candidate's value within [min, max]).
_PAIRS = ('modeldeploy_shadow_pairs_total{namespace="{{namespace}}", deployment_name="{{deployment}}", '
          'predictor_name="{{predictor}}"')
AGREEMENT: dict[str, Any] = {"name": "agreement", "min": 0.7,
                             "query": f'sum({_PAIRS}, agree="true"}}) / sum({_PAIRS}}})'}
RATE = 40.0  # requests per second, open loop


def model_deployment(stack: Stack, name: str, artifact: str, model: str = "digits", **spec: Any) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    body = {
        "apiVersion": "modeldeploy.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"name": model, "version": stack.version(artifact), "uri": stack.uri(artifact)},
            "strategy": STRATEGY,
            "analysis": ANALYSIS,
        },
    }
    model_fields = spec.pop("model_fields", {})  # more of spec.model, e.g. a regressor's output bins
    body["spec"]["model"].update(model_fields)
    body["spec"].update(spec)
    return body


@dataclass
class Timeline:
    started: float = field(default_factory=time.time)
    points: list[dict[str, Any]] = field(default_factory=list)

    def record(self, stack: Stack, name: str) -> dict[str, Any]:
        st = stack.objs.status(name)
        sd = stack.objs.sdep(name) or {}
        entries = (sd.get("status") or {}).get("deploymentStatus") or {}
        # Which predictors Seldon reports available, by the stand-in's own naming rule.
        available = sorted(p["name"] for p in (sd.get("spec") or {}).get("predictors") or []
                           if (entries.get(deployment_name(name, p)) or {}).get("availableReplicas"))
        with stack.router._lock:
            served = {k.split("/", 1)[1]: dict(v) for k, v in stack.router.stats.items() if k.startswith(f"{name}/")}
        point = {
            "t": round(time.time() - self.started, 2), "phase": st.get("phase"),
            "stable": st.get("stableVersion"), "candidate": st.get("candidateVersion"),
            "predictor": st.get("candidatePredictor"), "rollout_started": st.get("rolloutStartedAt"),
            "traffic_started": st.get("trafficStartedAt"),
            "weight": st.get("candidateWeight", 0), "step": st.get("step"),
            "analysis": st.get("lastAnalysis"), "counters": st.get("counters"), "router": served,
            "available": available, "deployments": sorted(entries),
        }
        self.points.append(point)
        return point


@dataclass
class Result:
    scenario: str
    deployment: str
    candidate: str
    result: str
    reason: str
    seconds: float
    candidate_served: int
    candidate_mirrored: int
    max_weight: int
    timeline: Timeline
    events: list[tuple[str, str, str]]
    final_status: dict[str, Any]
    final_traffic: dict[str, int]  # version -> traffic of the SeldonDeployment at the end
    load: dict[str, int]  # the load generator's counts: http_<code>, served_by:<version>, feedback_<code>

    def row(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "candidate": self.candidate, "result": self.result,
                "max weight": self.max_weight, "candidate responses": self.candidate_served,
                "seconds": round(self.seconds), "reason": self.reason}


Hook = Callable[[Stack, str, Timeline], None]


@dataclass(frozen=True)
class Scenario:
    name: str
    artifact: str
    expect: str
    description: str
    spec: dict[str, Any] = field(default_factory=dict)
    # Called on every timeline point while the rollout runs (to kill or stop things).
    during: Hook | None = None
    baseline: str = "1.0.0"
    model: str = "digits"
    deployment: str | None = None
    load: dict[str, Any] = field(default_factory=dict)  # protocol, malformed_fraction
    warmup: float = 3.0  # seconds of load on the stable version before the candidate


def run(stack: Stack, scenario: Scenario, deployment: str | None = None, timeout: float = 240,
        on_point: Callable[[dict[str, Any]], None] | None = None) -> Result:
    name = deployment or scenario.deployment or f"digits-{scenario.name}"
    objs = stack.objs
    objs.apply_mdep(model_deployment(stack, name, scenario.baseline, scenario.model, **scenario.spec))
    try:
        wait_for(f"{name} Stable at {scenario.baseline}", lambda: objs.status(name).get("phase") == "Stable", 180, 0.5)
    except AssertionError as e:
        sd = (objs.sdep(name) or {}).get("status")
        raise AssertionError(f"{e}\nstatus: {objs.status(name)}\nSeldonDeployment status: {sd}\n"
                             f"operator running: {stack.operator.running()}") from None
    load = stack.load(name, RATE, **scenario.load).start()
    try:
        time.sleep(scenario.warmup)  # the baseline has traffic before the candidate arrives
        timeline = Timeline()
        candidate = stack.version(scenario.artifact)
        objs.apply_mdep(model_deployment(stack, name, scenario.artifact, scenario.model, **scenario.spec))
        deadline = time.monotonic() + timeout
        while True:
            point = timeline.record(stack, name)
            if on_point:
                on_point(point)
            if scenario.during:
                scenario.during(stack, name, timeline)
            last = objs.status(name).get("lastRollout") or {}
            if last.get("version") == candidate and point["phase"] in ("Stable", "Failed"):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"{scenario.name}: no outcome after {timeout:.0f}s\n{_stuck(stack, name, point)}")
            time.sleep(1)
    finally:
        load.stop()
    result = _result(stack, scenario, name, candidate, last, timeline, dict(load.counts))
    # Nothing garbage-collects here (no kube-controller-manager): delete what the rollout
    # created, so the stand-in stops its model servers before the next scenario.
    objs.delete_mdep(name)
    objs.delete_sdep(name)
    return result


def _stuck(stack: Stack, name: str, point: dict[str, Any]) -> str:
    """What a rollout that never ended was waiting for: its message, each check's last
    verdict, and the operator's events (a timeout's message must say why, not just where)."""
    st = stack.objs.status(name)
    checks = [f"{c.get('name')} {c.get('outcome')}: {c.get('message')}"
              for c in (st.get("lastAnalysis") or {}).get("checks") or []]
    events = [f"{reason}: {message}" for _, reason, message in stack.objs.events(name)]
    return "\n".join([f"phase {point['phase']} ({st.get('pauseReason')}), weight {point['weight']}, step "
                      f"{point['step']}: {st.get('message')}", f"counters {st.get('counters')}",
                      "last analysis:", *checks, "events:", *events[-30:]])


def _result(stack: Stack, scenario: Scenario, name: str, candidate: str, last: dict[str, Any],
            timeline: Timeline, load: dict[str, int]) -> Result:
    objs = stack.objs
    predictor = next((p["predictor"] for p in reversed(timeline.points) if p["predictor"]), None)
    with stack.router._lock:
        counts = dict(stack.router.stats.get(f"{name}/{predictor}", {}))
    return Result(
        scenario=scenario.name, deployment=name, candidate=candidate, result=last["result"],
        reason=last.get("reason", ""), seconds=timeline.points[-1]["t"],
        candidate_served=counts.get("served", 0), candidate_mirrored=counts.get("mirrored", 0),
        # A promotion is 100 % by definition, even when a 1 s sample missed that moment.
        max_weight=100 if last["result"] == "Promoted" else max(p["weight"] or 0 for p in timeline.points),
        timeline=timeline,
        events=objs.events_until(name, {"Promoted": "Promoted", "RolledBack": "RolledBack", "NoWinner": "NoWinner"}
                                 .get(last["result"], "Aborted")),
        final_status=objs.status(name), final_traffic=objs.traffic(name), load=load,
    )


def _kill_operator_once(stack: Stack, name: str, timeline: Timeline) -> None:
    """SIGKILL the operator the first time the candidate holds traffic, restart it 5 s later."""
    marks = timeline.__dict__.setdefault("_kill", {})
    last = timeline.points[-1]
    if "killed" not in marks and last["phase"] == "Progressing" and (last["weight"] or 0) > 0:
        stack.operator.kill()
        marks["killed"] = last["t"]
    elif "killed" in marks and "restarted" not in marks and last["t"] - marks["killed"] >= 5:
        stack.operator.start()
        marks["restarted"] = last["t"]


def _prometheus_outage(stack: Stack, name: str, timeline: Timeline) -> None:
    """Stop Prometheus once the candidate has traffic; start it again once the rollout
    has paused on errors and stayed paused for 10 s."""
    marks = timeline.__dict__.setdefault("_outage", {})
    last = timeline.points[-1]
    if "stopped" not in marks and last["phase"] == "Progressing" and (last["weight"] or 0) > 0:
        stack.prom.process.stop()
        marks["stopped"] = last["t"]
    elif "stopped" in marks and "paused" not in marks and last["phase"] == "Paused":
        marks["paused"] = last["t"]
    elif "paused" in marks and "restarted" not in marks and last["t"] - marks["paused"] >= 10:
        stack.prom.process.start()
        marks["restarted"] = last["t"]


def prometheus_outage_at(fraction: float, seconds: float = 10.0) -> Hook:
    """Stop Prometheus `fraction` of the way into the first weighted step (0.1: its
    start, 0.5: its middle, 0.9: just before it would end) for `seconds` (two analysis
    intervals, fewer errors than errorLimit): the weight must hold, then the rollout go on."""

    def hook(stack: Stack, name: str, timeline: Timeline) -> None:
        marks = timeline.__dict__.setdefault("_outage", {})
        last = timeline.points[-1]
        if "stopped" not in marks and last["phase"] == "Progressing" and last["weight"]:
            started = parse_time(stack.objs.status(name).get("stepStartedAt"))
            step = float(STRATEGY["canary"]["stepDuration"].rstrip("s"))
            if started is not None and time.time() >= started.timestamp() + fraction * step:
                stack.prom.process.stop()
                marks.update(stopped=last["t"], weight=last["weight"])
        elif "stopped" in marks and "restarted" not in marks and last["t"] - marks["stopped"] >= seconds:
            stack.prom.process.start()
            marks["restarted"] = last["t"]

    return hook


def _kill_candidate_at_50(stack: Stack, name: str, timeline: Timeline) -> None:
    """SIGKILL the candidate's model server once it serves 50 %, and leave it dead (a pod
    in CrashLoopBackOff): Istio keeps sending it half the traffic, answered 503."""
    marks = timeline.__dict__.setdefault("_kill", {})
    last = timeline.points[-1]
    if "killed" not in marks and last["phase"] == "Progressing" and last["weight"] == 50 and last["predictor"]:
        server = stack.standin.server(stack.namespace, name, last["predictor"])
        if server is not None:
            server.process.kill()
            marks["killed"] = last["t"]


# The operator's progressDeadline, short so that a never-ready candidate is rolled back
# within a minute (Seldon itself would say Failed only after Kubernetes' 600 s).
QUICK_DEADLINE: dict[str, Any] = {**STRATEGY, "progressDeadline": "20s"}
# A user's own image on the Seldon wrapper (here the digits classifier's), given as
# Seldon's graph and componentSpecs: the operator wraps it in the output monitor.
CUSTOM_IMAGE: dict[str, Any] = {"predictor": {
    "graph": {"name": "digits", "type": "MODEL", "endpoint": {"type": "REST"}},
    "componentSpecs": [{"spec": {"containers": [{"name": "digits", "image": "registry.example.com/ml/digits:1",
                                                 "resources": {"requests": {"cpu": "100m"}}}]}}],
}}
# A scikit-learn regressor as a prepackaged SKLEARN_SERVER serves it (the node's method
# parameter: predict, the score), its outputs counted by the output monitor in bins that
# the rollout fixes from the stable version's outputs (no bins in the spec).
REGRESSOR: dict[str, Any] = {
    "model_fields": {"output": {"kind": "regressor"}},
    "predictor": {"graph": {"name": "diabetes", "implementation": "SKLEARN_SERVER",
                            "parameters": [{"name": "method", "type": "STRING", "value": "predict"}]}},
}
# A scikit-learn classifier on the prepackaged SKLEARN_SERVER as it is (predict_proba),
# judged by the output monitor's class counts.
PREPACKAGED: dict[str, Any] = {"predictor": {"implementation": "SKLEARN_SERVER"}}
# Seconds of traffic to the stable version before the candidate arrives: enough outputs
# (at RATE) to fix a regressor's bins from before the rollout (output_bins.MIN_REFERENCE).
REGRESSOR_WARMUP = 8.0

SCENARIOS = {s.name: s for s in [
    Scenario("healthy", "2.0.0", "Promoted", "a better model: promoted step by step"),
    Scenario("skewed", "skewed", "RolledBack", "outputs biased toward two classes: rolled back on output distribution"),
    Scenario("slow", "slow", "RolledBack", "300 ms slower: rolled back on p99 latency"),
    Scenario("corrupt", "corrupt", "RolledBack", "checksum mismatch: never ready, rolled back at the progress "
             "deadline without serving", spec={"strategy": QUICK_DEADLINE}),
    Scenario("killed-at-50", "2.0.0", "RolledBack", "candidate's server killed at 50 %: Istio keeps routing to it, "
             "users get 503s, rolled back", during=_kill_candidate_at_50),
    Scenario("long-names", "2024.06.01-rc1", "Promoted", "names over 63 characters: Seldon hashes the Deployment "
             "names, the rollout still sees readiness", baseline="2024.05.01", model="customer-churn-classifier",
             deployment="customer-churn-prediction"),
    Scenario("colliding-names", "2.0", "Promoted", "stable 2 (predictor v2), candidate 2.0 (v2-0): no traffic "
             "before the candidate's own Deployment is ready", baseline="2"),
    Scenario("grpc", "2.0.0", "Promoted", "gRPC-labelled traffic only: the default queries see it",
             load={"protocol": "grpc"}),
    # Only the error check: this scenario is about which codes count, not about latency.
    Scenario("client-mistakes", "2.0.0", "Promoted", "20 % malformed requests (4xx) to both versions: not "
             "candidate errors", load={"malformed_fraction": 0.2},
             spec={"analysis": {**ANALYSIS, "metrics": [{"name": "errors", "errorRate": {"max": 0.05}}]}}),
    Scenario("shadow-skewed", "skewed", "RolledBack", "skewed model mirrored as a shadow: rolled back before any "
             "user is served by it", spec={"strategy": {**STRATEGY, "shadow": {"duration": "30s"}},
                                           "analysis": {**ANALYSIS, "metrics": ANALYSIS["metrics"] + [AGREEMENT]}}),
    Scenario("ab-better", "2.0.0", "Promoted", "A/B test against a more accurate model: it wins on reward",
             spec={"strategy": AB_TEST}),
    Scenario("ab-same", "1.0.1", "NoWinner", "A/A test (same weights, new version): no winner, 1.0.0 stays",
             spec={"strategy": AB_TEST}),
    Scenario("regressor-healthy", "diabetes-1.1.0", "Promoted", "a scikit-learn regressor on a prepackaged "
             "server, slightly re-regularised: same output bins, promoted", baseline="diabetes-1.0.0",
             model="diabetes", spec=REGRESSOR, load={"dataset": "diabetes"}, warmup=REGRESSOR_WARMUP),
    Scenario("regressor-drifted", "diabetes-drifted", "RolledBack", "a regressor predicting higher scores: fast "
             "and error-free, rolled back on its output bins", baseline="diabetes-1.0.0", model="diabetes",
             spec=REGRESSOR, load={"dataset": "diabetes"}, warmup=REGRESSOR_WARMUP),
    Scenario("prepackaged-healthy", "iris-1.1.0", "Promoted", "a scikit-learn classifier on the prepackaged "
             "SKLEARN_SERVER (predict_proba), less regularised: same classes predicted, promoted",
             baseline="iris-1.0.0", model="iris", spec=PREPACKAGED, load={"dataset": "iris"}),
    Scenario("prepackaged-skewed", "iris-skewed", "RolledBack", "a prepackaged classifier that calls most "
             "virginica versicolor: rolled back on the output monitor's class counts", baseline="iris-1.0.0",
             model="iris", spec=PREPACKAGED, load={"dataset": "iris"}),
    Scenario("custom-healthy", "2.0.0", "Promoted", "our digits classifier as a user's own image in a graph "
             "(custom componentSpecs), judged by the output monitor: promoted", spec=CUSTOM_IMAGE),
    Scenario("custom-skewed", "skewed", "RolledBack", "the skewed classifier as a user's own image: rolled back on "
             "the output monitor's class counts", spec=CUSTOM_IMAGE),
    Scenario("operator-killed", "2.0.0", "Promoted", "operator SIGKILLed mid-rollout: resumes, no step skipped",
             during=_kill_operator_once),
    Scenario("prometheus-down", "2.0.0", "Promoted", "Prometheus stopped mid-rollout: paused, then continues",
             during=_prometheus_outage),
    # The fault campaign's sandbox half (the long ones run with `make soak`).
    *(Scenario(f"prometheus-blip-{where}", "2.0.0", "Promoted", f"Prometheus down for two intervals at the "
               f"{where} of a step: the weight holds, then the rollout goes on", during=prometheus_outage_at(at))
      for where, at in (("start", 0.1), ("middle", 0.5), ("end", 0.9))),
    Scenario("aa-canary", "1.0.1", "Promoted", "A/A canary (same weights, new version): promoted, no false alarm"),
    Scenario("bad-traffic-soak", "2.0.0", "Promoted", "half the requests malformed for a whole slow rollout: "
             "4xx to the clients, never a candidate error", load={"malformed_fraction": 0.5},
             spec={"strategy": {**STRATEGY, "canary": {"steps": [20, 50, 100], "stepDuration": "40s"}},
                   "analysis": {**ANALYSIS, "metrics": [{"name": "errors", "errorRate": {"max": 0.05}}]}}),
]}
