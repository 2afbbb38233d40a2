"""The API documents itself: every field of the CRD, spec and status, has a description
a user can act on, `kubectl explain` serves them, and `kubectl get mdep -o wide` shows the
step, the next action's time and the message."""

from __future__ import annotations

import json
import time
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modeldeploy import GROUP, PLURAL, VERSION

from .test_crd_parser_agreement import BASE, ROOT, walk

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


def get_json(api: client.ApiClient, path: str, accept: str = "application/json") -> Any:
    method, url, headers, body, post = api.param_serialize(
        method="GET", resource_path=path, header_params={"Accept": accept}, auth_settings=["BearerToken"])
    resp = api.call_api(method, url, headers, body, post)
    resp.read()
    return json.loads(resp.data)


def described() -> list[tuple[str, dict[str, Any]]]:
    return [(p, s) for p, s in walk(ROOT, "") if p and p != "metadata"]


def test_every_field_has_a_description() -> None:
    missing = [p for p, s in described() if len((s.get("description") or "").strip()) < 10]
    assert not missing, f"fields without a description: {missing}"
    assert len(described()) > 90  # spec and status both walked


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def test_descriptions_state_defaults_and_duration_ranges() -> None:
    for path, schema in described():
        text = schema["description"]
        if "default" in schema and schema["default"] != {}:
            assert "default" in text.lower() and _shown(schema["default"]) in text, (path, text)
        if "duration(self)" in json.dumps(schema.get("x-kubernetes-validations") or []):
            assert "1s" in text and "720h" in text, (path, text)
        for bound in ("minimum", "maximum"):
            if bound in schema:
                assert _shown(schema[bound]) in text, (path, bound, text)


def test_every_status_field_the_operator_writes_is_declared() -> None:
    from dataclasses import fields

    from modeldeploy.state import Status

    declared = ROOT["properties"]["status"]["properties"]
    assert {f.name for f in fields(Status)} <= set(declared), "declare and describe new status fields in the CRD"


def test_conditions_carry_observed_generation() -> None:
    item = ROOT["properties"]["status"]["properties"]["conditions"]["items"]
    assert item["properties"]["observedGeneration"]["type"] == "integer"


def test_explain_serves_the_descriptions(api, crds) -> None:
    """What `kubectl explain mdep.spec.analysis.metrics` reads: the published OpenAPI v3."""
    # The API server publishes a new CRD's OpenAPI asynchronously: an empty or partial
    # answer right after the CRD is established is not yet the answer.
    deadline = time.monotonic() + 60
    while True:
        try:
            schemas = get_json(api, f"/openapi/v3/apis/{GROUP}/{VERSION}")["components"]["schemas"]
            mdep = next(v for k, v in schemas.items() if k.endswith(".ModelDeployment"))
            break
        except (ValueError, KeyError, StopIteration, ApiException):
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    metric = mdep["properties"]["spec"]["properties"]["analysis"]["properties"]["metrics"]["items"]
    assert all(p.get("description") for p in metric["properties"].values()), metric["properties"].keys()
    assert mdep["properties"]["status"]["properties"]["nextActionAt"]["description"]


def test_wide_output_shows_step_next_action_and_message(api, crds, namespace) -> None:
    objs = client.CustomObjectsApi(api)
    objs.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, BASE)
    objs.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, "digits", {"status": {
        "phase": "Progressing", "step": 2, "nextActionAt": "2030-01-02T03:04:05Z", "message": "Step 3 of 4 at 50%."}})
    table = get_json(api, f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}", TABLE)
    columns = [c["name"] for c in table["columnDefinitions"]]
    wide = {c["name"] for c in table["columnDefinitions"] if c.get("priority") == 1}
    assert {"Step", "Next-Action", "Message"} <= wide
    row = dict(zip(columns, table["rows"][0]["cells"]))
    assert (row["Step"], row["Next-Action"], row["Message"]) == (2, "2030-01-02T03:04:05Z", "Step 3 of 4 at 50%.")
