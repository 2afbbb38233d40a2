"""examples/: every file is accepted by the real API server with the CRD installed
(server-side dry run, so the CRD's schema, CEL rules and defaults all apply) and by the
operator's own parsing, the set covers each strategy and check kind, and the README
points at each one."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kubernetes import client

from modeldeploy import GROUP, PLURAL, VERSION
from modeldeploy.analysis.config import parse_analysis
from modeldeploy.spec import parse

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


def load(path: Path) -> dict:
    (doc,) = [d for d in yaml.safe_load_all(path.read_text()) if d]
    return doc


def kinds_of(doc: dict) -> set[str]:
    spec = doc["spec"]
    strategy, metrics = spec.get("strategy") or {}, (spec.get("analysis") or {}).get("metrics")
    out = {"ab-test" if strategy.get("type") == "ABTest" else "canary"}
    if strategy.get("shadow"):
        out.add("shadow")
    if metrics == []:
        out.add("no-analysis")
    for m in metrics or []:
        out |= {k for k in ("latency", "errorRate", "outputDistribution", "query") if k in m}
    if spec.get("paused"):
        out.add("manual")
    predictor = spec.get("predictor") or {}
    if predictor.get("implementation"):
        out.add("prepackaged")
    if (predictor.get("versionIn") or {}).get("field") == "imageTag":
        out.add("custom-image")
    if (predictor.get("graph") or {}).get("children"):
        out.add("graph")
    if (spec["model"].get("output") or {}).get("kind") == "regressor":
        out.add("regressor")
    return out


def test_the_examples_cover_every_strategy_and_check_kind() -> None:
    covered = set().union(*(kinds_of(load(p)) for p in EXAMPLES))
    assert {"canary", "ab-test", "shadow", "no-analysis", "manual", "latency", "errorRate", "outputDistribution",
            "query", "prepackaged", "custom-image", "graph", "regressor"} <= covered, covered
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_operator_parses_each_example(path: Path) -> None:
    spec = load(path)["spec"]
    parse(spec)
    parse_analysis(spec.get("analysis"))


@pytest.mark.cluster
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_api_server_accepts_each_example(api, crds, namespace, path: Path) -> None:
    doc = load(path)
    assert doc["apiVersion"] == f"{GROUP}/{VERSION}" and doc["kind"] == "ModelDeployment"
    created = client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, doc, dry_run="All", field_validation="Strict")
    # the API server filled in the defaults the operator relies on
    assert created["spec"]["strategy"]["type"] in ("Canary", "ABTest")
    assert created["spec"]["analysis"]["interval"]
    parse(created["spec"])


def test_the_readme_links_every_example() -> None:
    readme = (REPO / "README.md").read_text()
    missing = [p.name for p in EXAMPLES if f"examples/{p.name}" not in readme]
    assert not missing, f"README.md does not mention {missing}"
