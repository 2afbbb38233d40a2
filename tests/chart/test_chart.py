"""The chart without a cluster: lint, values validation, what each mode renders, the
packaged chart's contents, the Dockerfile's user."""

from __future__ import annotations

import json
import re
import tarfile

import pytest
import yaml

from .helmkube import REPO, find

# The operator's permissions, exactly (templates/_rbac.tpl says why each is there).
# Widening them must be a deliberate change of this table, checked by test_rbac.py.
RULES = [
    (["modeldeploy.io"], ["modeldeployments"], ["list", "watch", "patch"]),
    (["modeldeploy.io"], ["modeldeployments/status"], ["patch"]),
    (["modeldeploy.io"], ["modeldeployments/finalizers"], ["update"]),
    (["machinelearning.seldon.io"], ["seldondeployments"], ["list", "watch", "create", "update"]),
    ([""], ["events"], ["create", "get", "patch"]),
]


def rules_of(role: dict) -> list[tuple[list[str], list[str], list[str]]]:
    return [(r["apiGroups"], r["resources"], r["verbs"]) for r in role["rules"]]


def test_helm_lint_passes_in_both_modes(tools) -> None:
    tools.helm("lint", "--strict", str(REPO))
    tools.helm("lint", "--strict", str(REPO), "--set", "watchNamespaces={team-a,team-b}",
               "--set", "prometheus.url=https://prometheus.monitoring:9090", "--set", "prometheus.auth.type=bearer",
               "--set", "prometheus.auth.existingSecret=prometheus-token")


def test_clusterwide_mode_renders_a_cluster_role_and_no_namespaced_rights(tools) -> None:
    docs = tools.template()
    (role,) = find(docs, "ClusterRole")
    (binding,) = find(docs, "ClusterRoleBinding")
    assert not find(docs, "Role") and not find(docs, "RoleBinding")
    assert rules_of(role) == RULES
    (sa,) = find(docs, "ServiceAccount")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                                    "namespace": "modeldeploy-system"}]
    (deploy,) = find(docs, "Deployment")
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--all-namespaces" in args and not any(a.startswith("--namespace") for a in args)


def test_namespaced_mode_renders_a_role_in_each_watched_namespace_only(tools) -> None:
    docs = tools.template("--set", "watchNamespaces={team-a,team-b}")
    assert not find(docs, "ClusterRole") and not find(docs, "ClusterRoleBinding")
    roles, bindings = find(docs, "Role"), find(docs, "RoleBinding")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    assert all(rules_of(r) == RULES for r in roles)
    assert all(b["subjects"][0]["namespace"] == "modeldeploy-system" for b in bindings)
    (deploy,) = find(docs, "Deployment")
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [a for a in args if a.startswith("--namespace")] == ["--namespace=team-a", "--namespace=team-b"]


def test_peering_adds_only_the_peering_rule_and_the_peering_objects(tools) -> None:
    cw = tools.template("--set", "peering.enabled=true")
    (role,) = find(cw, "ClusterRole")
    assert rules_of(role) == RULES + [(["kopf.dev"], ["clusterkopfpeerings"], ["list", "watch", "patch"])]
    assert [d["metadata"]["name"] for d in find(cw, "ClusterKopfPeering")] == ["modeldeploy"]
    (deploy,) = find(cw, "Deployment")
    assert deploy["spec"]["replicas"] == 1 and deploy["spec"]["strategy"] == {"type": "Recreate"}
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--peering=modeldeploy" in args and "--priority=0" in args
    ns = tools.template("--set", "peering.enabled=true", "--set", "watchNamespaces={team-a}")
    (role,) = find(ns, "Role")
    assert rules_of(role)[-1] == (["kopf.dev"], ["kopfpeerings"], ["list", "watch", "patch"])
    assert [d["metadata"]["namespace"] for d in find(ns, "KopfPeering")] == ["team-a"]


def test_replicas_stand_by_with_auto_priorities_and_a_disruption_budget(tools) -> None:
    assert not find(tools.template(), "PodDisruptionBudget")
    docs = tools.template("--set", "replicas=3", "--set", "peering.enabled=true", "--set", "peering.priority=auto",
                          "--set", "peering.lifetime=20", "--set", "operator.concurrency=8")
    (deploy,) = find(docs, "Deployment")
    assert deploy["spec"]["replicas"] == 3 and deploy["spec"]["strategy"]["type"] == "RollingUpdate"
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert "--peering=modeldeploy" in container["args"] and "--priority=auto" in container["args"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODELDEPLOY_PEERING_LIFETIME"] == "20" and env["MODELDEPLOY_CONCURRENCY"] == "8"
    (pdb,) = find(docs, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == deploy["spec"]["selector"]["matchLabels"]


def test_operator_pod_is_locked_down(tools) -> None:
    (deploy,) = find(tools.template(), "Deployment")
    spec = deploy["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (c,) = pod["containers"]
    assert c["command"] == ["python", "-m", "modeldeploy"]
    assert c["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}}
    assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"health": 8080, "metrics": 9090}
    assert "--liveness=http://0.0.0.0:8080/healthz" in c["args"]
    assert pod["serviceAccountName"] and pod["automountServiceAccountToken"] is True
    # No credentials anywhere unless asked for, and never a Secret made by the chart.
    assert not any("secretKeyRef" in str(e) for e in c["env"])


def test_prometheus_settings_reach_the_operator_and_credentials_stay_in_their_secret(tools) -> None:
    docs = tools.template("--set", "prometheus.url=https://prom.example:9091/api-prefix",
                          "--set", "prometheus.auth.type=basic", "--set", "prometheus.auth.existingSecret=prom-creds",
                          "--set", "prometheus.tls.caConfigMap=prom-ca", "--set", "metrics.port=9300",
                          "--set", "analysis.queries.errors=sum by (code) (x{p=\"{{predictor}}\"})")
    assert not find(docs, "Secret")
    (deploy,) = find(docs, "Deployment")
    c = deploy["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}
    assert env["MODELDEPLOY_PROMETHEUS_URL"] == "https://prom.example:9091/api-prefix"
    assert env["MODELDEPLOY_PROMETHEUS_TIMEOUT"] == "5"
    assert env["MODELDEPLOY_PROMETHEUS_USERNAME"] == {"secretKeyRef": {"name": "prom-creds", "key": "username"}}
    assert env["MODELDEPLOY_PROMETHEUS_PASSWORD"] == {"secretKeyRef": {"name": "prom-creds", "key": "password"}}
    assert env["MODELDEPLOY_PROMETHEUS_CA_FILE"] == "/etc/modeldeploy/prometheus-ca/ca.crt"
    assert env["MODELDEPLOY_METRICS_PORT"] == "9300"
    (cm,) = find(docs, "ConfigMap")
    assert yaml.safe_load(cm["data"]["queries.yaml"]) == {"errors": 'sum by (code) (x{p="{{predictor}}"})'}
    assert env["MODELDEPLOY_QUERIES_FILE"] == "/etc/modeldeploy/queries/queries.yaml"
    (svc,) = find(docs, "Service")
    assert svc["spec"]["ports"] == [{"name": "metrics", "port": 9300, "targetPort": "metrics", "protocol": "TCP"}]
    assert not find(docs, "ServiceMonitor")
    (sm,) = find(tools.template("--set", "metrics.serviceMonitor.enabled=true",
                                "--set", "metrics.serviceMonitor.labels.release=prometheus"), "ServiceMonitor")
    assert sm["metadata"]["labels"]["release"] == "prometheus"
    assert sm["spec"]["endpoints"][0]["port"] == "metrics" and sm["spec"]["endpoints"][0]["honorLabels"] is True
    assert sm["spec"]["selector"]["matchLabels"] == svc["spec"]["selector"]


def test_alerts_and_dashboard_render_from_the_packaged_chart_with_its_schema(tools, tmp_path) -> None:
    # tests/oncall tests the two templates on a copy of the chart; this checks the chart
    # itself: values.yaml and the schema accept their values, .helmignore keeps the files.
    docs = tools.template()
    assert not find(docs, "PrometheusRule") and not [d for d in docs if d["metadata"]["name"].endswith("-dashboard")]
    tools.helm("package", str(REPO), "--destination", str(tmp_path))
    (tgz,) = tmp_path.glob("modeldeploy-*.tgz")
    out = tools.helm("template", "md", str(tgz), "--set", "alerts.enabled=true", "--set", "alerts.labels.release=prom",
                     "--set", "alerts.ruleLabels.team=ml", "--set", "alerts.disabled={ModelDeployOperatorAbsent}",
                     "--set", "dashboard.enabled=true", "--set", "dashboard.namespace=monitoring").stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    (rule,) = find(docs, "PrometheusRule")
    source = yaml.safe_load((REPO / "alerts" / "modeldeploy-rules.yaml").read_text())
    alerts = [r["alert"] for g in source["groups"] for r in g["rules"]]
    assert [r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]] == [
        a for a in alerts if a != "ModelDeployOperatorAbsent"]
    (cm,) = [d for d in docs if d["metadata"]["name"].endswith("-dashboard")]
    assert cm["metadata"]["namespace"] == "monitoring"
    assert json.loads(cm["data"]["modeldeploy.json"]) == json.loads((REPO / "dashboards" / "modeldeploy.json").read_text())


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "watchNamespaces={Team_A}"], "/watchNamespaces/0"),
    (["--set", "prometheus.url=prometheus:9090"], "/prometheus/url"),
    (["--set", "prometheus.auth.type=token"], "/prometheus/auth/type"),
    (["--set", "prometheus.timeout=soon"], "/prometheus/timeout"),
    (["--set", "prometheus.url=http://p:9090", "--set", "prometheus.auth.type=bearer"],
     "set prometheus.auth.existingSecret"),
    (["--set", "replicas=0"], "/replicas"),
    (["--set", "replicas=2"], "replicas > 1 needs peering.enabled=true"),
    (["--set", "replicas=2", "--set", "peering.enabled=true"], "replicas > 1 needs peering.priority=auto"),
    (["--set", "peering.priority=high"], "/peering/priority"),
    (["--set", "metrics.port=8080"], "metrics.port and liveness.port must differ"),
    (["--set", "analysis.queries.latency=sum(rate(x[5m]))"], "/analysis/queries/latency"),
    (["--set", "analysis.queries.p99=x{p=\"{{predictor}}\"}"], "additional properties 'p99' not allowed"),
])
def test_bad_values_fail_with_a_message_naming_the_value(tools, args, message) -> None:
    out = tools.helm("template", "x", str(REPO), *args, check=False)
    assert out.returncode != 0, out.stdout[:500]
    assert message in out.stderr, out.stderr


def test_packaged_chart_holds_the_chart_and_nothing_else(tools, tmp_path) -> None:
    tools.helm("package", str(REPO), "--destination", str(tmp_path))
    (tgz,) = tmp_path.glob("modeldeploy-*.tgz")
    with tarfile.open(tgz) as tar:
        names = [n.split("/", 1)[1] for n in tar.getnames() if "/" in n]
    top = {n.split("/")[0] for n in names}
    allowed = {"Chart.yaml", "values.yaml", "values.schema.json", "templates", "crds", "README.md", "LICENSE",
               ".helmignore", "alerts", "dashboards"}
    assert top <= allowed, f"not chart files, add them to .helmignore: {sorted(top - allowed)}"
    assert {"Chart.yaml", "values.yaml", "values.schema.json", "templates", "crds"} <= top
    assert "crds/modeldeploy.io_modeldeployments.yaml" in names
    assert [n for n in names if n.startswith("alerts/")] == ["alerts/modeldeploy-rules.yaml"]
    assert [n for n in names if n.startswith("dashboards/")] == ["dashboards/modeldeploy.json"]
    assert not [n for n in names if n.endswith((".py", ".pyc"))]


def test_dockerfile_runs_the_operator_as_the_user_the_chart_expects(tools) -> None:
    text = (REPO / "Dockerfile").read_text()
    values = yaml.safe_load((REPO / "values.yaml").read_text())
    assert re.search(r"^FROM python:3\.11-slim", text, re.M)
    (user,) = re.findall(r"^USER (\d+):(\d+)$", text, re.M)
    assert int(user[0]) == values["podSecurityContext"]["runAsUser"] != 0
    assert 'ENTRYPOINT ["python", "-m", "modeldeploy"]' in text
    assert 'pip install ".[operator]"' in text
    for src in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for path in src.split():
            assert (REPO / path).exists(), f"Dockerfile copies {path}, which does not exist"
