"""The chart's notifications, alerts, router and metric provider values, rendered by `helm
template`: what the Deployment's environment says is what the operator reads, the
alerts link an absolute runbook URL by default, and the schema offers exactly the
registered routers and providers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from modeldeploy import notify, providers, routers
from tests.chart.helmkube import Tools, find

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tools(tmp_path_factory) -> Tools:
    return Tools(tmp_path_factory.mktemp("helm-home"))


def env_of(docs: list[dict], secrets: dict[tuple[str, str], str]) -> dict[str, str]:
    (deploy,) = find(docs, "Deployment")
    out = {}
    for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]:
        if "value" in e:
            out[e["name"]] = e["value"]
        elif "secretKeyRef" in e.get("valueFrom", {}):
            ref = e["valueFrom"]["secretKeyRef"]
            out[e["name"]] = secrets[(ref["name"], ref["key"])]  # what the kubelet would inject
    return out


def test_no_webhooks_no_notification_settings(tools) -> None:
    env = env_of(tools.template(), {})
    assert not [k for k in env if k.startswith("MODELDEPLOY_NOTIFY")]


def test_the_operator_reads_the_webhooks_the_chart_renders(tools, tmp_path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"notifications": {"cluster": "prod-eu", "retries": 0, "backoff": 0.5, "webhooks": [
        {"name": "slack", "format": "slack", "existingSecret": "slack-webhook",
         "events": ["paused", "promoted", "rolledBack"]},
        {"name": "audit", "url": "http://events.audit.svc/modeldeploy"},
        {"name": "oncall", "format": "slack", "existingSecret": "oncall", "secretKey": "hook", "default": False},
    ]}}))
    docs = tools.template("-f", str(values))
    env = env_of(docs, {("slack-webhook", "url"): "https://hooks.slack.example/T/B/x",
                        ("oncall", "hook"): "https://hooks.slack.example/T/B/y"})
    assert "hooks.slack.example" not in env["MODELDEPLOY_NOTIFY_WEBHOOKS"]  # URLs stay in Secrets
    notifier = notify.from_env(env)
    try:
        hooks = {w.name: w for w in notifier.webhooks}
        assert hooks["slack"] == notify.Webhook("slack", "https://hooks.slack.example/T/B/x", "slack",
                                                frozenset({"paused", "promoted", "rolledBack"}), True)
        assert hooks["audit"] == notify.Webhook("audit", "http://events.audit.svc/modeldeploy")
        assert hooks["oncall"].default is False and hooks["oncall"].url.endswith("/y")
        s = notifier.settings
        assert (s.cluster, s.retries, s.backoff, s.timeout, s.queue_size) == ("prod-eu", 0, 0.5, 5.0, 1000)
    finally:
        notifier.stop()


@pytest.mark.parametrize("hook,words", [
    ({"name": "x"}, "existingSecret"),
    ({"name": "x", "url": "https://a", "existingSecret": "s"}, "not"),
    ({"name": "x", "url": "https://a", "format": "teams"}, "format"),
    ({"name": "x", "url": "https://a", "events": ["promote"]}, "events"),
])
def test_bad_webhooks_fail_the_install_naming_the_value(tools, tmp_path, hook, words) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"notifications": {"webhooks": [hook]}}))
    out = tools.helm("template", "md", str(REPO), "-f", str(values), check=False)
    assert out.returncode != 0 and "notifications/webhooks/0" in out.stderr and words in out.stderr, out.stderr


def test_alerts_link_an_absolute_runbook_url_by_default(tools) -> None:
    (rule,) = find(tools.template("--set", "alerts.enabled=true"), "PrometheusRule")
    urls = [r["annotations"]["runbook_url"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert urls and all(u.startswith("https://github.com/modeldeploy/modeldeploy/blob/main/docs/runbook.md#")
                        for u in urls), urls
    (rule,) = find(tools.template("--set", "alerts.enabled=true", "--set", "alerts.runbookUrl="), "PrometheusRule")
    assert all(r["annotations"]["runbook_url"].startswith("docs/runbook.md#")
               for g in rule["spec"]["groups"] for r in g["rules"])


def test_the_router_and_provider_values_are_the_registered_names_and_reach_the_operator(tools) -> None:
    schema = json.loads((REPO / "values.schema.json").read_text())["properties"]["operator"]["properties"]
    assert sorted(schema["router"]["enum"]) == sorted(routers.ROUTERS)
    assert sorted(schema["metricProvider"]["enum"]) == sorted(providers.PROVIDERS)
    env = env_of(tools.template(), {})
    assert (env["MODELDEPLOY_ROUTER"], env["MODELDEPLOY_METRIC_PROVIDER"]) == (routers.DEFAULT, providers.DEFAULT)
    assert routers.from_env(env).resource == routers.get(routers.DEFAULT).resource
    out = tools.helm("template", "x", str(REPO), "--set", "operator.router=kserve", check=False)
    assert out.returncode != 0 and "/operator/router" in out.stderr, out.stderr
