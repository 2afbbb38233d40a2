"""Seldon Core v1 as the traffic router: render SeldonDeployments, read their status.

Pure functions only. One SeldonDeployment per ModelDeployment (same name and namespace,
owned by it); each model version is one predictor. Seldon's admission webhook requires
non-shadow `traffic` values to sum to 100 and allows at most one shadow, and Istio routes
on the pod label `version` taken from `predictor.labels.version`, so every predictor
carries the model version there and in `annotations.version` (which the executor reports
as `predictor_version` on its metrics).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .spec import ModelSpec

API_VERSION = "machinelearning.seldon.io/v1"
GROUP, VERSION, PLURAL = "machinelearning.seldon.io", "v1", "seldondeployments"
MODEL_MOUNT = "/mnt/models"


def predictor_name(version: str, taken: str | None = None) -> str:
    """A DNS-1123 label for a version ("2.0.0" -> "v2-0-0"), distinct from `taken`.

    Versions are label values ([A-Za-z0-9_.-]), which predictor names are not, so two
    versions can map to one name ("1.0" and "1-0"); when the other live predictor already
    has the name, this one gets a hash suffix.
    """
    base = ("v" + re.sub(r"[^a-z0-9]+", "-", version.lower()).strip("-"))[:40].rstrip("-")
    if base != taken:
        return base
    return f"{base[:33]}-{hashlib.sha256(version.encode()).hexdigest()[:6]}"


@dataclass(frozen=True)
class Predictor:
    """One version's predictor as the rollout wants it."""

    name: str
    version: str
    model: ModelSpec
    traffic: int
    shadow: bool = False


def render_predictor(p: Predictor) -> dict[str, Any]:
    m = p.model
    # Seldon's storage initializer downloads s3://, gs:// and pvc:// models to
    # /mnt/models before the server starts; only file:// is read in place. The server
    # checks the artifact's card against the version we route as.
    local = m.uri if m.uri.startswith("file://") else MODEL_MOUNT
    parameters = [{"name": "model_uri", "type": "STRING", "value": local},
                  {"name": "version", "type": "STRING", "value": p.version}]
    if m.sha256:
        parameters.append({"name": "sha256", "type": "STRING", "value": m.sha256})
    out: dict[str, Any] = {
        "name": p.name,
        "replicas": m.replicas,
        "traffic": p.traffic,
        "labels": {"version": p.version},
        "annotations": {"version": p.version},
        "graph": {
            "name": m.name,
            "type": "MODEL",
            "modelUri": m.uri,
            "endpoint": {"type": "REST"},
            "parameters": parameters,
            "children": [],
        },
        # Seldon's default readiness probe only checks the port, which a server with a
        # corrupt artifact opens too; /health/status answers 200 only once the model loaded.
        "componentSpecs": [{"spec": {"containers": [{
            "name": m.name, "image": m.image,
            "readinessProbe": {"httpGet": {"path": "/health/status", "port": "http"}, "periodSeconds": 5},
        }]}}],
    }
    if p.shadow:
        out["shadow"] = True
    return out


def render(name: str, namespace: str, owner: Mapping[str, Any], predictors: list[Predictor]) -> dict[str, Any]:
    """The whole desired SeldonDeployment, owned by the ModelDeployment `owner`."""
    live = [p for p in predictors if not p.shadow]
    assert live and sum(p.traffic for p in live) == 100, f"non-shadow traffic must sum to 100: {predictors}"
    assert sum(p.shadow for p in predictors) <= 1, "at most one shadow predictor"
    return {
        "apiVersion": API_VERSION,
        "kind": "SeldonDeployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "modeldeploy"},
            "ownerReferences": [{
                "apiVersion": owner["apiVersion"],
                "kind": owner["kind"],
                "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }],
        },
        "spec": {"name": name, "protocol": "seldon", "predictors": [render_predictor(p) for p in predictors]},
    }


def fingerprint(spec: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """The fields modeldeploy owns, in a form that ignores what Seldon's webhook defaults.

    Comparing whole specs would fight the mutating webhook forever; comparing these
    still catches every manual edit that changes routing or what is served.
    """
    out = []
    for p in spec.get("predictors") or []:
        graph = p.get("graph") or {}
        containers = [c.get("image") for cs in p.get("componentSpecs") or [] for c in (cs.get("spec") or {}).get("containers") or []]
        out.append((
            p.get("name"), p.get("traffic", 0), bool(p.get("shadow", False)), p.get("replicas"),
            (p.get("labels") or {}).get("version"), (p.get("annotations") or {}).get("version"),
            graph.get("name"), graph.get("modelUri"), tuple(containers),
        ))
    return sorted(out, key=lambda t: str(t[0]))


def in_sync(actual: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> bool:
    return actual is not None and fingerprint(actual.get("spec") or {}) == fingerprint(desired["spec"])


@dataclass(frozen=True)
class Observation:
    """What Seldon reports about a SeldonDeployment, per predictor."""

    exists: bool
    state: str = ""
    description: str = ""
    ready: frozenset[str] = field(default_factory=frozenset)
    failed: Mapping[str, str] = field(default_factory=dict)

    def is_ready(self, predictor: str) -> bool:
        return predictor in self.ready

    def failure(self, predictor: str) -> str | None:
        return self.failed.get(predictor)


def observe(sd: Mapping[str, Any] | None) -> Observation:
    """Per-predictor readiness from `status.deploymentStatus`.

    Seldon names a predictor's Deployments `<sdep>-<predictor>-<i>-<container>` and
    reports each with replicas, availableReplicas and a status; a predictor is ready when
    all of its Deployments are available, failed when any reports Failed.
    """
    if sd is None:
        return Observation(exists=False)
    name = sd["metadata"]["name"]
    status = sd.get("status") or {}
    deployments = status.get("deploymentStatus") or {}
    ready, failed = set(), {}
    for p in (sd.get("spec") or {}).get("predictors") or []:
        prefix = f"{name}-{p['name']}-"
        mine = {k: v for k, v in deployments.items() if k.startswith(prefix)}
        if not mine:
            continue
        for v in mine.values():
            if v.get("status") == "Failed":
                failed[p["name"]] = v.get("description") or status.get("description") or "Seldon reports the predictor Failed"
        wanted = p.get("replicas", 1)
        if p["name"] not in failed and all(
            (v.get("availableReplicas") or 0) >= max(1, v.get("replicas") or wanted) for v in mine.values()
        ):
            ready.add(p["name"])
    return Observation(
        exists=True, state=status.get("state", ""), description=status.get("description", ""),
        ready=frozenset(ready), failed=failed,
    )
