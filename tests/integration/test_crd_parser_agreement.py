"""The CRD and `spec.parse` accept and reject the same ModelDeployments.

Boundary values are generated from the CRD itself: every field of the schema that carries
a constraint (minimum, maximum, maxLength, items, enum, CEL rule) gets values on and
across its limits, each sent to the real API server (server-side dry-run create) and to
the parser; the verdicts must agree. A new constraint without a generator here fails
`test_every_constrained_field_is_covered`. The defaults of the CRD and the parser come
from `schema.DEFAULTS` and are compared here too.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modeldeploy import GROUP, PLURAL, VERSION
from modeldeploy.schema import DEFAULTS
from modeldeploy.spec import SpecError, parse_object

from ..conftest import CRD_FILES
from . import predictor_cases

CRD = yaml.safe_load(CRD_FILES[0].read_text())
ROOT = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
BASE: dict[str, Any] = {
    "apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelDeployment", "metadata": {"name": "digits"},
    "spec": {"model": {"name": "digits", "version": "1.0.0", "uri": "file:///models/digits/1.0.0"}},
}
CONSTRAINTS = ("minimum", "maximum", "maxLength", "minLength", "minItems", "maxItems", "enum", "pattern",
               "x-kubernetes-validations")


def walk(schema: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, schema) of every property below `schema`; list items get ``[]``."""
    yield path, schema
    for key, sub in (schema.get("properties") or {}).items():
        yield from walk(sub, f"{path}.{key}" if path else key)
    if "items" in schema:
        yield from walk(schema["items"], f"{path}[]")


def constrained() -> dict[str, dict[str, Any]]:
    return {p: s for p, s in walk(ROOT, "") if p.startswith(("spec", "metadata")) and any(c in s for c in CONSTRAINTS)}


def rules(schema: dict[str, Any]) -> str:
    return " ".join(r["rule"] for r in schema.get("x-kubernetes-validations") or [])


# -- values to try, per kind of constraint --------------------------------------------
DURATIONS = ["0s", "0ms", "0.5s", "999ms", "1s", "1000ms", "1.5s", "1m", "1h30m", "720h", "720h1ms", "721h",
             "30", "", "1m" * 16, "1m" * 16 + "1s", "-1m", "1d"]
WINDOWS = ["0s", "0m", "999ms", "1s", "1000ms", "1m30s", "30s1m", "720h", "721h", "1.5m", "1d", "", "2m"]
TEMPLATE_OK = 'sum by (le) (x_bucket{predictor_name="{{predictor}}"}[{{window}}])'
SAMPLES: dict[str, list[Any]] = {
    "metadata.name": ["digits", "a-b", "a.b", "Digits", "-a", "a_b", "a" * 40, "a" * 41],
    "spec.model.name": ["digits", "Digits", "di_gits", "d.x", "a" * 40, "a" * 41],
    "spec.model.version": ["1.0.0", "V1_rc.2", "1.0.0+b", "-1", ".1", "a" * 63, "a" * 64, "1.0.0\n"],
    "spec.model.uri": ["s3://b/k", "file:///m", "http://h/m?a=1&b=%20", "S3://b/k", "s3://", "s3://b k", "s3://b\nk",
                       "ftp://x", "https://h/\u00e9", "s3://" + "a" * 2043, "s3://" + "a" * 2044],
    "spec.model.sha256": ["a" * 64, "0" * 64, "A" * 64, "a" * 63, "a" * 65, "a" * 64 + "\n", "g" * 64],
    "spec.model.image": ["modeldeploy/model-server:0.1.0", "localhost:5000/ml/server", "ghcr.io/o/x@sha256:" + "a" * 64,
                         "x:" + "t" * 128, "x:" + "t" * 129, "Upper/x", "x:tag; rm", "x:tag\n", "x::y", "/x",
                         "registry.example.com/" + "a" * 491, "registry.example.com/" + "a" * 492],
    "spec.analysis.metrics[].name": ["p99", "error-rate", "P99", "p.99", "p_99", "a" * 63, "a" * 64],
    "spec.analysis.metrics[].query": ["vector(1)", 'x{n="{{namespace}}", p="{{ predictor }}"}[{{window}}]', "",
                                      "   ", "x{p='{{pod}}'}", "{{}}", "x" * 4096, "x" * 4097],
    **{f"spec.analysis.queries.{k}": [TEMPLATE_OK, "sum(x)", "", "x{p='{{predictor}}', q='{{pod}}'}",
                                      "x{p='{{ predictor }}'}", "x{p='{{predictor}}'}" + " " * 4076,
                                      "x{p='{{predictor}}'}" + " " * 4077]
       for k in ("latency", "errors", "outputs", "reward", "feedback")},
    "spec.strategy.canary.steps": [[], [100], [50], [50, 100], [1, 100], [99, 100], [10, 10, 100], [50, 25, 100],
                                   [0, 100], [50, 101], list(range(5, 100, 5)) + [100], list(range(1, 21)) + [100]],
    "spec.analysis.metrics": [[{"name": f"m{i}", "latency": {}} for i in range(n)] for n in (0, 1, 20, 21)]
    + [[{"name": "a", "latency": {}}, {"name": "a", "errorRate": {}}]],
    # Object-level rules: whole objects at the path.
    "spec.strategy": [{"canary": {}, "abTest": {}}, {"type": "ABTest", "canary": {}}, {"abTest": {}},
                      {"type": "ABTest", "abTest": {}}, {"type": "Canary", "canary": {}}],
    "spec.analysis.metrics[]": [{"name": "m"}, {"name": "m", "latency": {}, "errorRate": {}},
                                {"name": "m", "query": "vector(1)"}, {"name": "m", "query": "vector(1)", "min": 1},
                                {"name": "m", "latency": {}, "max": 1}, {"name": "m", "query": "v", "min": 2, "max": 1},
                                {"name": "m", "query": "v", "min": 1, "max": 1}, {"name": "m", "query": "v", "min": -5}],
    "": [None],  # the root rule on metadata.name: covered by metadata.name's samples
    **predictor_cases.SAMPLES,
}


def number_cases(schema: dict[str, Any]) -> list[Any]:
    bounds = [float(b) for _, b in re.findall(r"self\s*(>=|>|<=|<)\s*(-?[0-9.]+)", rules(schema))]
    bounds += [float(schema[k]) for k in ("minimum", "maximum") if k in schema]
    if schema.get("type") == "integer":
        return sorted({-1, 0, 1, 10**9, *(int(b) + d for b in bounds for d in (-1, 0, 1))})
    return sorted({-1.0, 0.0, 1.0, 1e9, *(b + d for b in bounds for d in (-1e-6, 0.0, 1e-6))})


def cases(path: str, schema: dict[str, Any]) -> list[Any]:
    if path in SAMPLES:
        return SAMPLES[path]
    if "duration(self)" in rules(schema):
        return WINDOWS if path.endswith(".window") else DURATIONS
    if "enum" in schema:
        return list(schema["enum"]) + ["Bogus", ""]
    if schema.get("type") in ("integer", "number"):
        return number_cases(schema)
    raise KeyError(path)


def place(path: str, value: Any) -> dict[str, Any]:
    """BASE with `value` at `path`, inside whatever makes the field meaningful."""
    doc = copy.deepcopy(BASE)
    if path == "metadata.name":
        doc["metadata"]["name"] = value
        return doc
    if path == "spec" or path.startswith(("spec.predictor", "spec.model.output")):
        return predictor_cases.place(doc, path, value)
    parts = path.split(".")[1:]
    spec = doc["spec"]
    if parts[:2] == ["strategy", "abTest"]:
        spec["strategy"] = {"type": "ABTest"}
    if parts[:2] == ["analysis", "metrics[]"]:
        if len(parts) == 2:
            spec["analysis"] = {"metrics": [value]}
            return doc
        item: dict[str, Any] = {"name": "m"}
        kind = parts[2]
        if kind == "query":
            item.update(query=value, max=1)
        elif kind in ("min", "max"):
            item.update(query="vector(1)", **{kind: value})
        elif kind == "name":
            item.update(name=value, latency={})
        else:
            item[kind] = {parts[3]: value}
        spec["analysis"] = {"metrics": [item]}
        return doc
    node = spec
    for k in parts[:-1]:
        node = node.setdefault(k, {})
    if parts[-1].endswith("[]"):  # a list item: the only one is a canary step, before the final 100
        node[parts[-1][:-2]] = [value, 100]
    else:
        node[parts[-1]] = value
    return doc


ALL_CASES = [(p, v) for p, s in constrained().items() if p for v in cases(p, s)]


def test_every_constrained_field_is_covered() -> None:
    missing = []
    for path, schema in constrained().items():
        try:
            cases(path, schema)
        except KeyError:
            missing.append(path)
    assert not missing, f"constrained CRD fields without boundary values here: {missing}"


def _server(api: client.ApiClient, namespace: str, doc: dict[str, Any]) -> tuple[bool, str, dict[str, Any] | None]:
    try:
        obj = client.CustomObjectsApi(api).create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, doc, dry_run="All")
        return True, "", obj
    except ApiException as e:
        assert e.status == 422, (e.status, e.body)
        return False, json.loads(e.body)["message"], None


def _parser(doc: dict[str, Any]) -> tuple[bool, str]:
    try:
        parse_object(doc, allow_custom_queries=True)  # the policy is the operator's, not the CRD's
        return True, ""
    except SpecError as e:
        return False, str(e)


def test_the_api_server_and_the_parser_agree_on_every_boundary(api, crds, namespace) -> None:
    disagreements, verdicts = [], {}
    for path, value in ALL_CASES:
        doc = place(path, value)
        ok, server_msg, stored = _server(api, namespace, doc)
        parsed, parser_msg = _parser(doc)
        verdicts.setdefault(path, set()).add(ok)
        if ok != parsed:
            disagreements.append(f"{path}={value!r:.60}: server {'accepts' if ok else 'rejects'} "
                                 f"({server_msg[-160:]}), parser {'accepts' if parsed else 'rejects'} ({parser_msg})")
        elif ok:  # what the server stores (defaults filled in) parses too
            assert stored is not None and _parser(stored)[0], (path, value, _parser(stored)[1])
    assert not disagreements, "\n".join(disagreements)
    one_sided = [p for p, v in verdicts.items() if v != {True, False}]
    assert not one_sided, f"these fields' values were all accepted or all rejected: {one_sided}"


@pytest.mark.parametrize(("path", "value", "limit"), [
    ("spec.strategy.abTest.confidence", 0.99995, "0.9999"),
    ("spec.strategy.abTest.confidence", 0.4, "0.5"),
    ("spec.analysis.metrics[].latency.significance", 0.6, "0.5"),
    ("spec.analysis.metrics[].outputDistribution.maxJensenShannon", 0.9, "0.8325"),
    ("spec.analysis.metrics[].errorRate.max", 1.5, "1"),
    ("spec.analysis.metrics[].latency.maxRatioToBaseline", 0.5, "at least 1"),
    ("spec.strategy.canary.stepDuration", "0s", "at least 1s"),
    ("spec.analysis.window", "0m", "at least 1s"),
    ("spec.strategy.abTest.split", 100, "99"),
])
def test_messages_state_the_real_limit(api, crds, namespace, path: str, value: Any, limit: str) -> None:
    ok, server_msg, _ = _server(api, namespace, place(path, value))
    parsed, parser_msg = _parser(place(path, value))
    assert not ok and not parsed
    assert limit in server_msg and limit in parser_msg, (server_msg, parser_msg)


def test_crd_defaults_are_the_parsers() -> None:
    found = {}
    for path, schema in walk(ROOT["properties"]["spec"], ""):
        if "default" in schema:
            found[path] = schema["default"]
    assert found == DEFAULTS


def test_a_lone_100_is_rejected_at_apply_saying_what_to_write(api, crds, namespace) -> None:
    ok, msg, _ = _server(api, namespace, place("spec.strategy.canary.steps", [100]))
    assert not ok and "spec.strategy.canary.steps" in msg and "[50, 100]" in msg and "command=promote" in msg


def test_a_dotted_name_is_rejected_at_apply(api, crds, namespace) -> None:
    ok, msg, _ = _server(api, namespace, place("metadata.name", "digits.v2"))
    assert not ok and "metadata.name" in msg and "DNS-1123 label" in msg


def test_the_boundaries_are_many() -> None:
    assert len(ALL_CASES) > 400 and len({p for p, _ in ALL_CASES}) > 70
