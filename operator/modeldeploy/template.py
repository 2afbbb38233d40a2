"""The predictor template (`spec.predictor`) and output kind (`spec.model.output`), parsed.

Without `spec.predictor` every version is served by modeldeploy's own model server (the
zero-config default). With it, the user writes what varies per Seldon predictor the way
Seldon spells it: a prepackaged `implementation` (+ `envSecretRefName`), or a `graph`
with `componentSpecs`, and `versionIn` says where each version's identity goes: the
version node's `modelUri` (spec.model.uri), its container's image tag (spec.model.version),
or one of its parameters (spec.model.version). The graph and component specs pass to
Seldon as written; the operator only adds the output monitor around the graph.

The CRD checks every field it can type; OpenAPI cannot recurse, so rules over the whole
graph (unique node names at any depth, a container for every non-prepackaged node,
Seldon's "container name = graph node name", the version node existing) are checked here
and reported as InvalidSpec before any traffic moves.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from .schema import DEFAULTS, DNS_LABEL, IMAGE, URI, SpecError

#: The output-monitor node and container the operator wraps every graph in.
MONITOR_NODE = "modeldeploy-monitor"
NODE_TYPES = ("MODEL", "ROUTER", "COMBINER", "TRANSFORMER", "OUTPUT_TRANSFORMER")
PROTOCOLS = ("seldon", "v2", "tensorflow", "kfserving")
VERSION_FIELDS = ("modelUri", "imageTag", "parameter")
PARAMETER_TYPES = ("INT", "FLOAT", "DOUBLE", "STRING", "BOOL")
OUTPUT_KINDS = ("classifier", "regressor")
# Seldon's seldon-config `predictor_servers` may name more servers than its defaults
# (SKLEARN_SERVER, XGBOOST_SERVER, MLFLOW_SERVER, TENSORFLOW_SERVER, TRITON_SERVER, ...).
PREPACKAGED = re.compile(r"^[A-Z][A-Z0-9_]*_SERVER$")
IMPLEMENTATION = re.compile(r"^[A-Z][A-Z0-9_]*$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
PARAMETER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_NODES, MAX_PARAMETERS, MAX_COMPONENTS, MAX_BINS = 10, 20, 10, 50


@dataclass(frozen=True)
class OutputSpec:
    """What the output monitor counts: classes, or bins of a regressor's value (without
    `bins`, bins fixed at each rollout's start from the stable version's outputs)."""

    kind: str = "classifier"
    bins: tuple[float, ...] = ()


@dataclass(frozen=True)
class PredictorTemplate:
    """`spec.predictor`, as Seldon spells it; `graph`/`component_specs` are passed through."""

    graph: Mapping[str, Any]
    component_specs: tuple[Mapping[str, Any], ...] = ()
    protocol: str = DEFAULTS["predictor.protocol"]
    version_field: str = DEFAULTS["predictor.versionIn.field"]
    version_node: str = ""
    version_parameter: str | None = None
    prepackaged: bool = False


def nodes(graph: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every node of a Seldon graph, root first."""
    yield graph
    for child in graph.get("children") or []:
        yield from nodes(child)


def _fail(where: str, message: str) -> SpecError:
    return SpecError(f"{where}: {message}")


def _string(v: Any, where: str, pattern: re.Pattern[str], max_len: int, hint: str) -> str:
    if not isinstance(v, str) or len(v) > max_len or not pattern.fullmatch(v):
        raise _fail(where, f"{v!r:.80} {hint}, at most {max_len} characters")
    return v


def _keys(d: Any, where: str, allowed: tuple[str, ...] | None = None) -> Mapping[str, Any]:
    if not isinstance(d, Mapping):
        raise _fail(where, f"must be a mapping, got {type(d).__name__}")
    if allowed is not None and set(d) - set(allowed):
        raise _fail(where, f"unknown field(s) {', '.join(sorted(set(d) - set(allowed)))}; known: {', '.join(allowed)}")
    return d


def _list(v: Any, where: str, max_items: int) -> list[Any]:
    if not isinstance(v, list) or len(v) > max_items:
        raise _fail(where, f"must be a list of at most {max_items} items")
    return v


def _node(n: Any, where: str, depth: int) -> None:
    _keys(n, where)
    _string(n.get("name"), f"{where}.name", DNS_LABEL, 63,
            "must be a DNS label (lowercase letters, digits and '-'): it is also the container's name")
    if n["name"] == MONITOR_NODE:
        raise _fail(f"{where}.name", f"{MONITOR_NODE} is the name of the output monitor modeldeploy adds; "
                    "rename this node")
    if "type" in n and n["type"] not in NODE_TYPES:
        raise _fail(f"{where}.type", f"{n['type']!r} must be one of {', '.join(NODE_TYPES)}")
    if "implementation" in n:
        _string(n["implementation"], f"{where}.implementation", IMPLEMENTATION, 63,
                "must be a Seldon implementation such as SKLEARN_SERVER or RANDOM_ABTEST (upper case)")
    if "modelUri" in n:
        _string(n["modelUri"], f"{where}.modelUri", URI, 2048,
                "must be a URI with scheme file://, s3://, gs://, pvc:// or https:// and no spaces")
    if "envSecretRefName" in n:
        _string(n["envSecretRefName"], f"{where}.envSecretRefName", DNS_SUBDOMAIN, 253,
                "must be the name of a Secret in this namespace (a DNS subdomain)")
    for i, p in enumerate(_list(n.get("parameters") or [], f"{where}.parameters", MAX_PARAMETERS)):
        _keys(p, f"{where}.parameters[{i}]", ("name", "value", "type"))
        _string(p.get("name"), f"{where}.parameters[{i}].name", PARAMETER, 63,
                "must be a parameter name (letters, digits, '_')")
        if p.get("type", "STRING") not in PARAMETER_TYPES:
            raise _fail(f"{where}.parameters[{i}].type", f"{p.get('type')!r} must be one of {', '.join(PARAMETER_TYPES)}")
        if not isinstance(p.get("value"), str):
            raise _fail(f"{where}.parameters[{i}].value", f"{p.get('value')!r} must be a string (Seldon's are)")
    children = _list(n.get("children") or [], f"{where}.children", MAX_NODES)
    if depth > MAX_NODES:
        raise _fail(where, f"the graph is deeper than {MAX_NODES} levels")
    for i, child in enumerate(children):
        _node(child, f"{where}.children[{i}]", depth + 1)


def _containers(component_specs: tuple[Mapping[str, Any], ...], where: str
                ) -> tuple[dict[str, tuple[int, int]], dict[str, str | None]]:
    """Container name -> (componentSpecs index, container index), and -> its image."""
    found: dict[str, tuple[int, int]] = {}
    images: dict[str, str | None] = {}
    for i, cs in enumerate(component_specs):
        spec = _keys(_keys(cs, f"{where}[{i}]").get("spec") or {}, f"{where}[{i}].spec")
        for j, c in enumerate(_list(spec.get("containers") or [], f"{where}[{i}].spec.containers", MAX_NODES)):
            c = _keys(c, f"{where}[{i}].spec.containers[{j}]")
            name = _string(c.get("name"), f"{where}[{i}].spec.containers[{j}].name", DNS_LABEL, 63,
                           "must be the name of the graph node it serves (Seldon's rule)")
            if c.get("image") is not None:
                _string(c["image"], f"{where}[{i}].spec.containers[{j}].image", IMAGE, 512,
                        "must be an image reference such as registry.example.com/ml/my-model:1.0")
            if name in found:
                raise _fail(f"{where}[{i}].spec.containers[{j}].name", f"{name!r} is used twice")
            found[name] = (i, j)
            images[name] = c.get("image")
    return found, images


def parse_template(raw: Any, model_name: str, where: str = "spec.predictor") -> PredictorTemplate | None:
    """Typed template; None without one (modeldeploy's own server)."""
    if raw is None:
        return None
    t = _keys(raw, where, ("implementation", "envSecretRefName", "protocol", "graph", "componentSpecs", "versionIn"))
    if ("implementation" in t) == ("graph" in t):
        raise _fail(where, "set either implementation (a prepackaged server, e.g. SKLEARN_SERVER) or graph "
                    "(with componentSpecs for your own images), not both and not neither")
    if "envSecretRefName" in t and "implementation" not in t:
        raise _fail(f"{where}.envSecretRefName", "belongs with implementation; with a graph set it on the node "
                    "that downloads the model")
    protocol = t.get("protocol", DEFAULTS["predictor.protocol"])
    if protocol not in PROTOCOLS:
        raise _fail(f"{where}.protocol", f"{protocol!r} must be one of {', '.join(PROTOCOLS)}")
    prepackaged = "implementation" in t
    if prepackaged:
        impl = _string(t["implementation"], f"{where}.implementation", PREPACKAGED, 63,
                       "must be a prepackaged server of Seldon's seldon-config, e.g. SKLEARN_SERVER, XGBOOST_SERVER")
        graph: dict[str, Any] = {"name": model_name, "type": "MODEL", "implementation": impl, "children": []}
        if "envSecretRefName" in t:
            graph["envSecretRefName"] = _string(t["envSecretRefName"], f"{where}.envSecretRefName", DNS_SUBDOMAIN, 253,
                                                "must be the name of a Secret in this namespace (a DNS subdomain)")
    else:
        _node(t["graph"], f"{where}.graph", 1)
        graph = dict(t["graph"])
    specs = tuple(_list(t.get("componentSpecs") or [], f"{where}.componentSpecs", MAX_COMPONENTS))
    containers, images = _containers(specs, f"{where}.componentSpecs")
    names: set[str] = set()
    for n in nodes(graph):
        if n["name"] in names:
            raise _fail(f"{where}.graph", f"node name {n['name']!r} is used twice; Seldon needs unique names")
        names.add(n["name"])
        if not n.get("implementation") and not images.get(n["name"]):
            raise _fail(f"{where}.componentSpecs", f"graph node {n['name']!r} has no implementation and no "
                        f"container named {n['name']!r} with an image: add one (Seldon matches containers to "
                        "nodes by name)")
    if extra := sorted(set(containers) - names):
        raise _fail(f"{where}.componentSpecs", f"container(s) {', '.join(extra)} match no graph node: Seldon "
                    "needs each container named after the node it serves")
    v = _keys(t.get("versionIn") or {}, f"{where}.versionIn", ("field", "node", "parameter"))
    field = v.get("field", DEFAULTS["predictor.versionIn.field"])
    if field not in VERSION_FIELDS:
        raise _fail(f"{where}.versionIn.field", f"{field!r} must be one of {', '.join(VERSION_FIELDS)}")
    node = v.get("node", graph["name"])
    if node not in names:
        raise _fail(f"{where}.versionIn.node", f"{node!r} is not a node of the graph ({', '.join(sorted(names))})")
    if field == "imageTag" and (not images.get(node) or "@" in (images.get(node) or "")):
        raise _fail(f"{where}.versionIn", f"field imageTag needs a container named {node!r} in componentSpecs "
                    "with an image not pinned by @sha256 digest (its tag becomes spec.model.version)")
    parameter = v.get("parameter")
    if (field == "parameter") != (parameter is not None):
        raise _fail(f"{where}.versionIn.parameter", "is required with field: parameter (and only then): the "
                    "parameter that receives spec.model.version, e.g. model_version")
    if parameter is not None:
        _string(parameter, f"{where}.versionIn.parameter", PARAMETER, 63,
                "must be a parameter name (letters, digits, '_')")
    return PredictorTemplate(graph=graph, component_specs=specs, protocol=protocol, version_field=field,
                             version_node=node, version_parameter=parameter, prepackaged=prepackaged)


def parse_output(raw: Any, where: str = "spec.model.output") -> OutputSpec:
    o = _keys(raw or {}, where, ("kind", "bins"))
    bins = o.get("bins")
    if bins is not None:
        bins = _list(bins, f"{where}.bins", MAX_BINS)
        if not bins or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bins):
            raise _fail(f"{where}.bins", f"must be 1 to {MAX_BINS} numbers (bin edges), e.g. [50, 100, 150]")
        if any(a >= b for a, b in pairwise(bins)):
            raise _fail(f"{where}.bins", f"{bins} must be strictly increasing, e.g. [50, 100, 150]")
    kind = o.get("kind", "regressor" if bins else "classifier")
    if kind not in OUTPUT_KINDS:
        raise _fail(f"{where}.kind", f"{kind!r} must be classifier or regressor")
    if kind == "classifier" and bins:
        raise _fail(f"{where}.bins", "are for kind: regressor; a classifier is counted by class")
    return OutputSpec(kind=kind, bins=tuple(float(b) for b in bins or ()))
