"""Run one named sandbox scenario and print its row (pytest shows it for a failure)."""

from __future__ import annotations

from typing import Any

from modeldeploy.analysis.templates import DEFAULT_OUTPUTS, render
from modeldeploy.routing import predictor_name
from modeldeploy.state import parse_time
from sandbox import scenarios


def run(sandbox: object, name: str) -> scenarios.Result:
    result = scenarios.run(sandbox, scenarios.SCENARIOS[name])
    print(f"{name}: {result.row()}")
    seen = client_outputs(result)
    if seen:
        print(f"{name}: classes as the clients saw them: {seen}")
    return result


def client_outputs(r: scenarios.Result) -> dict[str, str]:
    """Each version's predicted classes as the load generator read them from the responses,
    over the whole run: beside the operator's counts (the failure's reason), a gap between
    the two points at the counting, agreement at the model or its inputs."""
    by: dict[str, dict[str, int]] = {}
    for key, n in r.load.items():
        if key.startswith("predicted:"):
            _, version, label = key.split(":", 2)
            by.setdefault(version, {})[label] = n
    out = {}
    for version, counts in sorted(by.items()):
        total = sum(counts.values())
        out[version] = f"{total} responses: " + " ".join(f"{k} {v / total:.1%}" for k, v in sorted(counts.items()))
    return out


def outputs_by_class(sandbox: Any, r: scenarios.Result) -> dict[str, Any]:
    """Each version's predicted classes as the operator's outputs query read them at the
    rollout's last analysis (for a failure message: which classes moved, and by how much:
    chance moves one class, a leak from another model moves that model's classes)."""
    points = list(reversed(r.timeline.points))
    last = next((p["analysis"] for p in points if p["analysis"]), None)
    candidate = next((p["predictor"] for p in points if p["predictor"]), None)
    started = next((p["traffic_started"] for p in points if p.get("traffic_started")), None)
    if last is None or candidate is None or started is None:
        return {}
    # The sequential outputs check counts since the candidate's first traffic (sequential_analyse.py).
    at, since = parse_time(last["time"]), parse_time(started)
    window = f"{max(1, int((at - since).total_seconds()))}s"
    baseline = predictor_name(sandbox.version(scenarios.SCENARIOS[r.scenario].baseline))
    out: dict[str, Any] = {"at": last["time"], "window": window}
    for predictor in (baseline, candidate):
        promql = render(DEFAULT_OUTPUTS, {"namespace": sandbox.namespace, "deployment": r.deployment,
                                          "predictor": predictor, "window": window,
                                          "lookback": scenarios.ANALYSIS["interval"]})
        try:
            rows = sandbox.prom.query(promql, at=at.timestamp())
            out[predictor] = {s["metric"].get("class"): round(float(s["value"][1])) for s in rows}
        except Exception as e:  # noqa: BLE001 - a diagnostic must not hide the failure it explains
            out[predictor] = f"{type(e).__name__}: {e}"
    return out
