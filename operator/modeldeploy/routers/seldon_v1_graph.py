"""A user's predictor template as one Seldon Core v1 predictor per version, wrapped in the
output monitor. Pure.

The user's graph and componentSpecs pass through as written but for two things: the
version goes where `versionIn` says (the node's modelUri, its container's image tag, or a
parameter), and the graph becomes the only child of the output monitor, an
OUTPUT_TRANSFORMER node served by modeldeploy's model-server image
(model_server/modelserver/monitor.py). The executor calls the monitor after the user's
graph answered, so it sees every response the model returned and passes it on unchanged.

Seldon's rules kept: a container is named after the node it serves; the monitor's
container gets its own componentSpec (its own Deployment), appended after the user's so
their Deployment names stay as the user would expect. Readiness of the user's containers
is Seldon's own (no probe added: only our server answers /health/status with its model's
state); the monitor's container answers /health/status itself (unready when misconfigured).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any

from ..spec import ModelSpec
from ..template import MONITOR_NODE, PredictorTemplate, nodes

#: The monitor's Seldon component in the model-server image, and how the wrapper runs it
#: (the image's CMD reads MODEL_NAME and SERVICE_TYPE; the wrapper has no
#: OUTPUT_TRANSFORMER service type, the route decides the method). Same strings as
#: model_server/modelserver/launch.py's MONITOR_INTERFACE (tests/unit/test_seldon_graph.py).
MONITOR_INTERFACE = "modelserver.monitor.OutputMonitor"
MONITOR_SERVICE_TYPE = "TRANSFORMER"
#: The monitor reads the seldon protocol's SeldonMessage only.
MONITORED_PROTOCOLS = ("seldon",)
_TAG = re.compile(r":[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def with_tag(image: str, tag: str) -> str:
    """`image` with its tag (if any) replaced by `tag`; a registry port is not a tag."""
    last = image.rsplit("/", 1)[-1]
    return (image[: len(image) - len(last)] + _TAG.sub("", last) if _TAG.search(last) else image) + ":" + tag


def _place_version(graph: dict[str, Any], specs: list[dict[str, Any]], t: PredictorTemplate, m: ModelSpec) -> None:
    node = next(n for n in nodes(graph) if n["name"] == t.version_node)
    if t.version_field == "modelUri":
        node["modelUri"] = m.uri  # type: ignore[index]
    elif t.version_field == "parameter":
        params = [p for p in node.get("parameters") or [] if p.get("name") != t.version_parameter]
        node["parameters"] = [*params, {"name": t.version_parameter, "type": "STRING", "value": m.version}]  # type: ignore[index]
    else:
        for container in (c for cs in specs for c in (cs.get("spec") or {}).get("containers") or []):
            if container.get("name") == t.version_node:
                container["image"] = with_tag(container["image"], m.version)


def monitor_node(m: ModelSpec, child: Mapping[str, Any]) -> dict[str, Any]:
    parameters = [{"name": "kind", "type": "STRING", "value": m.output.kind}]
    if m.output.bins:
        parameters.append({"name": "bins", "type": "STRING", "value": json.dumps(list(m.output.bins))})
    return {"name": MONITOR_NODE, "type": "OUTPUT_TRANSFORMER", "endpoint": {"type": "REST"},
            "parameters": parameters, "children": [child]}


def monitor_component(image: str) -> dict[str, Any]:
    env = {"MODEL_NAME": MONITOR_INTERFACE, "SERVICE_TYPE": MONITOR_SERVICE_TYPE,
           # Export the monitor's counts, and keep them (and the model's) out of the response.
           "INCLUDE_METRICS_IN_CLIENT_RESPONSE": "false"}
    return {"spec": {"containers": [{
        "name": MONITOR_NODE, "image": image,
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "readinessProbe": {"httpGet": {"path": "/health/status", "port": "http"}, "periodSeconds": 5},
    }]}}


def render_template(m: ModelSpec, monitor_image: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(graph, componentSpecs) of one version's predictor from its model's template."""
    t = m.predictor
    assert t is not None
    graph = copy.deepcopy(dict(t.graph))
    specs = [copy.deepcopy(dict(cs)) for cs in t.component_specs]
    # A prepackaged server without a container of its name gets its own componentSpec,
    # so its Deployment is known by name (Seldon fills in the server's image and ports)
    # and the monitor never shares its pod.
    named = {c.get("name") for cs in specs for c in (cs.get("spec") or {}).get("containers") or []}
    specs += [{"spec": {"containers": [{"name": n["name"]}]}} for n in nodes(graph)
              if str(n.get("implementation") or "").endswith("_SERVER") and n["name"] not in named]
    if t.prepackaged and m.uri:
        graph["modelUri"] = m.uri
    _place_version(graph, specs, t, m)
    if t.protocol not in MONITORED_PROTOCOLS:
        return graph, specs  # the output check has no counts then: Inconclusive, never a guess
    return monitor_node(m, graph), [*specs, monitor_component(monitor_image)]
