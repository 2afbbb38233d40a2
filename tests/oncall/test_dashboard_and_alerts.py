"""The Grafana dashboard and the alert rules: valid PromQL (parsed by promtool), only
metrics that exist (ours from modeldeploy.metrics, Seldon's, the model server's), alert
behaviour unit-tested with `promtool test rules`, and the chart templates that ship them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from modeldeploy import metrics

from .conftest import REPO

RULES = REPO / "alerts" / "modeldeploy-rules.yaml"
RULE_TESTS = sorted((REPO / "alerts" / "tests").glob("*.yaml"))
DASHBOARD = REPO / "dashboards" / "modeldeploy.json"
RUNBOOK = REPO / "docs" / "runbook.md"

OURS = metrics.OperatorMetrics(CollectorRegistry())
#: Label names of each of our samples (histogram samples add `le`).
OUR_LABELS = {}
for _m in OURS.all():
    for _name in metrics.metric_sample_names(_m):
        OUR_LABELS[_name] = set(_m._labelnames) | ({"le"} if _name.endswith("_bucket") else set())  # noqa: SLF001
#: Metrics others export that the dashboard may use (see docs/metrics.md).
EXTERNAL = {
    "seldon_api_executor_server_requests_seconds_bucket", "seldon_api_executor_server_requests_seconds_count",
    "seldon_api_executor_server_requests_seconds_sum", "modeldeploy_predictions_total",
    "modeldeploy_feedback_total", "modeldeploy_feedback_reward_total",
}
#: Labels Prometheus itself adds to every scraped series.
TARGET_LABELS = {"job", "instance", "pod", "service", "endpoint", "container"}

PROMQL_WORDS = {
    # aggregations, functions and keywords that can appear without a following "(" too
    "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless", "atan2",
    "inf", "nan", "start", "end",
}


def promql_selectors(expr: str) -> list[tuple[str, set[str]]]:
    """(metric name, label names matched) of every vector selector in a PromQL expression."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)  # string literals
    s = re.sub(r"\[[^\]]*\]", "", s)  # ranges and subqueries
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)  # label lists
    out = []
    for m in re.finditer(r"(?<![\w:.])([A-Za-z_:][\w:]*)\s*(\{[^}]*\})?\s*(\()?", s):
        name, matchers, call = m.group(1), m.group(2), m.group(3)
        if call and not matchers or name.lower() in PROMQL_WORDS:
            continue
        labels = set(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", matchers or ""))
        out.append((name, labels))
    return out


def test_promql_selector_parser_itself() -> None:
    expr = ('histogram_quantile(0.9, sum by (predictor_name, le) (rate(x_bucket{a="b{c}", d=~"e"}[5m])))'
            ' / ignoring (class) group_left sum(y offset 1m) > bool 0 and on (q) z')
    assert promql_selectors(expr) == [("x_bucket", {"a", "d"}), ("y", set()), ("z", set())]


def grafana_to_promql(expr: str) -> str:
    """A dashboard query with its variables filled in, as Grafana sends it."""
    for var, value in (("$__rate_interval", "5m"), ("$__interval", "1m"), ("$__range", "1h"),
                       ("${datasource}", "prom"), ("$namespace", "team-a"), ("$name", "digits"),
                       ("$check", "p99"), ("$quantile", "0.99")):
        expr = expr.replace(var, value)
    assert "$" not in expr, f"undefined variable in {expr}"
    return expr


def dashboard_queries(d: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target, annotation and variable query."""
    out = []

    def panels(ps: list[dict[str, Any]]) -> None:
        for p in ps:
            for t in p.get("targets", []):
                out.append((f"panel {p['title']!r} {t['refId']}", t["expr"]))
            panels(p.get("panels", []))

    panels(d["panels"])
    for a in d["annotations"]["list"]:
        if a.get("expr"):
            out.append((f"annotation {a['name']!r}", a["expr"]))
    for v in d["templating"]["list"]:
        if v["type"] == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", q)
            assert m, q
            out.append((f"variable {v['name']!r}", m.group(1)))
    return out


def check_metrics_exist(where: str, expr: str) -> None:
    for name, labels in promql_selectors(expr):
        if name in OUR_LABELS:
            unknown = labels - OUR_LABELS[name] - TARGET_LABELS
            assert not unknown, f"{where}: {name} has no label(s) {sorted(unknown)}: {expr}"
        else:
            assert name in EXTERNAL, f"{where}: {name} is neither ours (modeldeploy.metrics) nor a known metric: {expr}"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.skip("promtool is not on PATH (Debian's prometheus package)")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=60, cwd=REPO)


# -- alerts ------------------------------------------------------------------------------------
def test_alert_rules_pass_promtool_check() -> None:
    out = promtool("check", "rules", str(RULES))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 8 rules found" in out.stdout


def test_alert_rules_pass_their_unit_tests() -> None:
    assert RULE_TESTS
    out = promtool("test", "rules", *map(str, RULE_TESTS))
    assert out.returncode == 0, out.stdout + out.stderr


def test_alerts_use_existing_metrics_and_link_an_existing_runbook_section() -> None:
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    anchors = {re.sub(r"[^\w-]", "", h.strip().lower().replace(" ", "-"))
               for h in re.findall(r"^#+ (.+)$", RUNBOOK.read_text(), re.M)}
    tested = "\n".join(p.read_text() for p in RULE_TESTS)
    for rule in rules:
        check_metrics_exist(f"alert {rule['alert']}", rule["expr"])
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical")
        url = rule["annotations"]["runbook_url"]
        assert url.startswith("docs/runbook.md#") and url.split("#")[1] in anchors, f"{rule['alert']}: {url}"
        assert f"alertname: {rule['alert']}" in tested, f"{rule['alert']} has no promtool unit test"


# -- dashboard ---------------------------------------------------------------------------------
def test_dashboard_is_grafana_json_templated_on_namespace_and_name() -> None:
    d = json.loads(DASHBOARD.read_text())
    assert d["uid"] == "modeldeploy-rollouts" and d["schemaVersion"] >= 36
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert {"datasource", "namespace", "name", "check", "quantile"} <= set(variables)
    ids = []

    def walk(ps: list[dict[str, Any]]) -> None:
        for p in ps:
            ids.append(p["id"])
            if p["type"] != "row":
                assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
                assert p["targets"], p["title"]
            walk(p.get("panels", []))

    walk(d["panels"])
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    titles = " | ".join(p["title"] for p in d["panels"])
    for wanted in ("Traffic weights", "Latency quantile", "Output class share", "Check $check", "Check verdicts"):
        assert wanted in titles, wanted
    repeated = [p for p in d["panels"] if p.get("repeat")]
    assert [p["repeat"] for p in repeated] == ["check", "check"]
    # a repeated panel fills its rows, so nothing else may share its y
    for p in repeated:
        assert [q["id"] for q in d["panels"] if q["gridPos"]["y"] == p["gridPos"]["y"]] == [p["id"]], p["title"]


def test_dashboard_shows_each_checks_evidence_against_its_threshold() -> None:
    """Issue 16: the e-value and the threshold of every sequential check, and the increase
    with its confidence sequence and margins, on the panels an on-call engineer reads."""
    panels = {p["title"]: p for p in json.loads(DASHBOARD.read_text())["panels"]}
    evidence = panels["Evidence against each check's tolerance (e-value / fail threshold)"]
    expr = evidence["targets"][0]["expr"]
    assert 'series="e_value"' in expr and 'series="threshold"' in expr and "ignoring (series)" in expr
    assert evidence["fieldConfig"]["defaults"]["custom"]["scaleDistribution"]["type"] == "log"
    assert [s["value"] for s in evidence["fieldConfig"]["defaults"]["thresholds"]["steps"]] == [None, 1]
    increase = panels["Check $check: increase over the baseline, confidence sequence, tolerance"]
    assert increase["targets"][0]["expr"].startswith("modeldeploy_analysis_check_increase{")
    colored = {o["matcher"]["options"] for o in increase["fieldConfig"]["overrides"]}
    assert all(any(re.fullmatch(r, s) for r in colored) for s in metrics.INCREASE_SERIES)


def test_dashboard_queries_parse_and_use_only_metrics_that_exist(tmp_path: Path) -> None:
    queries = dashboard_queries(json.loads(DASHBOARD.read_text()))
    assert len(queries) > 20
    for where, expr in queries:
        check_metrics_exist(where, grafana_to_promql(expr))
    used = {n for _, e in queries for n, _ in promql_selectors(grafana_to_promql(e))}
    # the panels the issue asks for: weights, latency by predictor, output divergence, verdicts
    assert {"modeldeploy_candidate_weight", "seldon_api_executor_server_requests_seconds_bucket",
            "modeldeploy_analysis_check_value", "modeldeploy_predictions_total",
            "modeldeploy_analysis_checks_total", "modeldeploy_analysis_check_evidence",
            "modeldeploy_analysis_check_increase"} <= used
    # promtool parses every expression (as a recording rule)
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": grafana_to_promql(e)} for i, (_, e) in enumerate(queries)]}]}
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump(rules))
    out = promtool("check", "rules", str(path))
    assert out.returncode == 0, out.stdout + out.stderr


# -- the chart templates -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def chart(tmp_path_factory) -> Path:
    """A copy of the chart with every value the two templates read, so they are tested
    whatever values.yaml/values.schema.json and .helmignore currently hold."""
    if shutil.which("helm") is None:
        pytest.skip("helm is not on PATH")
    root = tmp_path_factory.mktemp("chart")
    for name in ("Chart.yaml", "values.yaml", "templates", "crds"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / name)
    (root / "alerts").mkdir()
    shutil.copy(RULES, root / "alerts" / RULES.name)
    (root / "dashboards").mkdir()
    shutil.copy(DASHBOARD, root / "dashboards" / DASHBOARD.name)
    values = yaml.safe_load((root / "values.yaml").read_text())
    values.setdefault("alerts", {}).update(enabled=False, labels={}, ruleLabels={}, runbookUrl="", disabled=[])
    values["dashboard"] = {"enabled": False, "labels": {"grafana_dashboard": "1"}, "annotations": {}, "namespace": ""}
    (root / "values.yaml").write_text(yaml.safe_dump(values))
    return root


def helm_template(chart: Path, tmp_path: Path, *args: str) -> list[dict[str, Any]]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HELM_CACHE_HOME": str(tmp_path / "c"),
           "HELM_CONFIG_HOME": str(tmp_path / "cfg"), "HELM_DATA_HOME": str(tmp_path / "d")}
    out = subprocess.run([shutil.which("helm"), "template", "md", str(chart), "--namespace", "ops", *args],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def test_chart_renders_nothing_extra_by_default(chart, tmp_path) -> None:
    kinds = {d["kind"] for d in helm_template(chart, tmp_path)}
    assert "PrometheusRule" not in kinds
    assert not [d for d in helm_template(chart, tmp_path) if d["metadata"]["name"].endswith("-dashboard")]


def test_chart_prometheus_rule_is_the_rules_file_with_the_values_applied(chart, tmp_path) -> None:
    docs = helm_template(chart, tmp_path, "--set", "alerts.enabled=true", "--set", "alerts.labels.release=prom",
                         "--set", "alerts.ruleLabels.team=ml", "--set", "alerts.ruleLabels.severity=page",
                         "--set", "alerts.runbookUrl=https://wiki.example/modeldeploy/runbook",
                         "--set", "alerts.disabled={ModelDeployOperatorAbsent}")
    (rule,) = [d for d in docs if d["kind"] == "PrometheusRule"]
    assert rule["metadata"]["labels"]["release"] == "prom" and rule["metadata"]["namespace"] == "ops"
    source = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    rendered = [r for g in rule["spec"]["groups"] for r in g["rules"]]
    assert [r["alert"] for r in rendered] == [r["alert"] for r in source if r["alert"] != "ModelDeployOperatorAbsent"]
    for r in rendered:
        src = next(s for s in source if s["alert"] == r["alert"])
        assert r["expr"] == src["expr"] and r.get("for") == src.get("for")
        assert r["labels"] == {**src["labels"], "team": "ml"}  # the rule's own severity wins
        assert r["annotations"]["runbook_url"] == src["annotations"]["runbook_url"].replace(
            "docs/runbook.md", "https://wiki.example/modeldeploy/runbook")
        assert r["annotations"]["summary"] == src["annotations"]["summary"]  # {{ $labels }} untouched


def test_chart_dashboard_config_map_carries_the_json_for_grafanas_sidecar(chart, tmp_path) -> None:
    docs = helm_template(chart, tmp_path, "--set", "dashboard.enabled=true",
                         "--set", "dashboard.annotations.grafana_folder=ML", "--set", "dashboard.namespace=monitoring")
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "md-modeldeploy-dashboard"]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "ML"} and cm["metadata"]["namespace"] == "monitoring"
    assert json.loads(cm["data"]["modeldeploy.json"]) == json.loads(DASHBOARD.read_text())
