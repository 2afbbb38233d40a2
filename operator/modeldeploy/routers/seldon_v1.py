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
from collections.abc import Mapping, Sequence
from typing import Any

from ..routing import MetricSeries, Observation, Predictor, Resource
from ..template import nodes
from .seldon_v1_graph import render_template

RESOURCE = Resource("machinelearning.seldon.io", "v1", "seldondeployments", "SeldonDeployment")
API_VERSION = RESOURCE.api_version
GROUP, VERSION, PLURAL = RESOURCE.group, RESOURCE.version, RESOURCE.plural
MODEL_MOUNT = "/mnt/models"


def render_predictor(p: Predictor) -> dict[str, Any]:
    m = p.model
    out: dict[str, Any] = {"name": p.name, "replicas": m.replicas, "traffic": p.traffic,
                           "labels": {"version": p.version}, "annotations": {"version": p.version}}
    if m.predictor is not None:
        out["graph"], out["componentSpecs"] = render_template(m, m.image)
    else:
        out.update(_own_server(p))
    if p.shadow:
        out["shadow"] = True
    return out


def _own_server(p: Predictor) -> dict[str, Any]:
    """Graph and container of modeldeploy's own model server, which counts its outputs
    itself (modeldeploy_predictions_total): no output monitor in front of it."""
    m = p.model
    assert m.uri is not None, "the parser requires spec.model.uri without spec.predictor"
    # Seldon's storage initializer downloads s3://, gs:// and pvc:// models to
    # /mnt/models before the server starts; only file:// is read in place. The server
    # checks the artifact's card against the version we route as.
    local = m.uri if m.uri.startswith("file://") else MODEL_MOUNT
    parameters = [{"name": "model_uri", "type": "STRING", "value": local},
                  {"name": "version", "type": "STRING", "value": p.version}]
    if m.sha256:
        parameters.append({"name": "sha256", "type": "STRING", "value": m.sha256})
    return {
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


def render(name: str, namespace: str, owner: Mapping[str, Any], predictors: Sequence[Predictor]) -> dict[str, Any]:
    """The whole desired SeldonDeployment, owned by the ModelDeployment `owner`."""
    live = [p for p in predictors if not p.shadow]
    assert live and sum(p.traffic for p in live) == 100, f"non-shadow traffic must sum to 100: {predictors}"
    assert sum(p.shadow for p in predictors) <= 1, "at most one shadow predictor"
    return {
        "apiVersion": API_VERSION,
        "kind": RESOURCE.kind,
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
        "spec": {"name": name, "protocol": protocol(predictors),
                 "predictors": [render_predictor(p) for p in predictors]},
    }


def protocol(predictors: Sequence[Predictor]) -> str:
    """Seldon's protocol is the SeldonDeployment's, one for all predictors: the stable
    version's (listed first), so a candidate never changes how the stable one is called."""
    t = predictors[0].model.predictor
    return t.protocol if t is not None else "seldon"


def fingerprint(spec: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """The fields modeldeploy owns, in a form that ignores what Seldon's webhook defaults.

    Comparing whole specs would fight the mutating webhook forever; comparing these
    still catches every manual edit that changes routing or what is served, including
    the graph parameters (a sha256 or version pin is a parameter).
    """
    out = []
    for p in spec.get("predictors") or []:
        graph = p.get("graph") or {}
        # Seldon's webhook fills in the image of a prepackaged server's container.
        prepackaged = {n.get("name") for n in nodes(graph) if str(n.get("implementation") or "").endswith("_SERVER")}
        containers = [c.get("image") for cs in p.get("componentSpecs") or []
                      for c in (cs.get("spec") or {}).get("containers") or [] if c.get("name") not in prepackaged]
        # Node by node (type and implementation are left out: the webhook defaults them).
        graph_nodes = tuple((n.get("name"), n.get("modelUri"), tuple(
            (q.get("name"), q.get("type"), str(q.get("value"))) for q in n.get("parameters") or []))
            for n in nodes(graph))
        out.append((
            p.get("name"), p.get("traffic", 0), bool(p.get("shadow", False)), p.get("replicas"),
            (p.get("labels") or {}).get("version"), (p.get("annotations") or {}).get("version"),
            tuple(containers), graph_nodes,
        ))
    return sorted(out, key=lambda t: str(t[0]))


def in_sync(actual: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> bool:
    return actual is not None and fingerprint(actual.get("spec") or {}) == fingerprint(desired["spec"])


# --- Seldon Core 1.17's names (operator/apis/machinelearning.seldon.io/v1) -------------------
K8S_NAME_MAX = 63
SVC_NAME_ANNOTATION = "seldon.io/svc-name"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - Seldon's naming, not security


def deployment_names(sdep: str, predictor: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """Per componentSpec with containers, the names Seldon may give its Deployment.

    Seldon names it `<sdep>-<predictor>-<i>-<metadata.name or the containers' names
    joined by ->`; a name over 63 characters becomes `seldon-<md5 of it>`, or
    `<sdep>-<md5>` when the Seldon operator runs with DEPLOYMENT_NAME_AS_PREFIX=true and
    that fits. Both hashed forms are listed (the setting is the Seldon operator's).
    """
    out: list[tuple[str, ...]] = []
    for i, cs in enumerate(predictor.get("componentSpecs") or []):
        containers = [c.get("name", "") for c in (cs.get("spec") or {}).get("containers") or []]
        if not containers:
            continue  # Seldon creates no Deployment for it
        suffix = (cs.get("metadata") or {}).get("name") or "-".join(containers)
        name = f"{sdep}-{predictor['name']}-{i}-{suffix}"
        if len(name) <= K8S_NAME_MAX:
            out.append((name,))
        else:
            alt = f"{sdep}-{_md5(name)}"
            out.append((f"seldon-{_md5(name)}",) + ((alt,) if len(alt) <= K8S_NAME_MAX else ()))
    if not out:  # a prepackaged server: Seldon's webhook adds a container named after the graph
        out.append(deployment_names(sdep, {"name": predictor["name"], "componentSpecs": [
            {"spec": {"containers": [{"name": (predictor.get("graph") or {}).get("name", "")}]}}]})[0])
    return out


def predictor_service_name(sdep: str, predictor: Mapping[str, Any]) -> str:
    """The predictor's own Service (Seldon's GetPredictorKey): where Istio routes its share
    and where feedback for a request it served must be sent."""
    custom = (predictor.get("annotations") or {}).get(SVC_NAME_ANNOTATION)
    if custom:
        return str(custom)
    name = f"{sdep}-{predictor['name']}"
    return name if len(name) <= K8S_NAME_MAX else f"seldon-{_md5(name)}"


STATE_AVAILABLE, STATE_CREATING, STATE_FAILED = "Available", "Creating", "Failed"


def observe(sd: Mapping[str, Any] | None) -> Observation:
    """Per-predictor readiness from what Seldon 1.17 writes, and nothing else.

    Seldon writes `status.deploymentStatus[<Deployment name>]` with only `replicas` and
    `availableReplicas` (both omitted when 0), copied from the Deployment, and a top-level
    `state`: Available when every Deployment has ready pods and none unavailable, Failed
    when a Deployment is unavailable and Kubernetes says it stopped progressing (its
    progressDeadlineSeconds, 600 s by default) or when Seldon itself hit an error, else
    Creating. It never names the failing predictor or the model server's reason.

    So a predictor is ready when each of its Deployments, found under its exact name, has
    availableReplicas >= replicas >= 1. It has failed when it is not ready while the
    state is Failed: a Failed state always has an unavailable Deployment behind it, and a
    predictor whose Deployments are all available is not it. Seldon sets no
    observedGeneration and refreshes an entry only when the Deployment's counts change, so
    right after an in-place change (a new sha256) the entry can still show the old pods.
    """
    if sd is None:
        return Observation(exists=False, kind=RESOURCE.kind)
    name = sd["metadata"]["name"]
    status = sd.get("status") or {}
    entries = status.get("deploymentStatus") or {}
    state, description = status.get("state", ""), status.get("description", "")
    ready, failed, available = set(), {}, {}
    for p in (sd.get("spec") or {}).get("predictors") or []:
        found = [next((entries[n] for n in names if n in entries), None) for names in deployment_names(name, p)]
        seen = [e for e in found if e is not None]
        if seen:
            available[p["name"]] = (sum(int(e.get("availableReplicas") or 0) for e in seen),
                                    sum(int(e.get("replicas") or 0) for e in seen))
        if seen and len(seen) == len(found) and all(
            int(e.get("replicas") or 0) >= 1 and int(e.get("availableReplicas") or 0) >= int(e.get("replicas") or 0)
            for e in seen
        ):
            ready.add(p["name"])
        elif state == STATE_FAILED:
            avail, want = available.get(p["name"], (0, 0))
            failed[p["name"]] = (f"{description or 'Seldon reports state Failed'} "
                                 f"({avail}/{want} replicas of predictor {p['name']} available)")
    return Observation(exists=True, state=state, description=description, ready=frozenset(ready),
                       failed=failed, available=available, kind=RESOURCE.kind)


#: What Seldon Core v1's executor and its Python wrapper export per predictor (plus our
#: model server's class counter), labelled by namespace, deployment and predictor.
SERIES = MetricSeries(
    # Executor latency histogram (Go client, seconds); ``service`` is ``predictions`` for
    # REST predictions (``feedback``, ``status`` and ``metadata`` requests share the metric).
    latency_histogram="seldon_api_executor_server_requests_seconds",
    # The model server's counter of predicted classes. A prometheus_client Counter named
    # ``modeldeploy_predictions`` (or ``..._total``) is exposed as ``..._total``.
    predictions_counter="modeldeploy_predictions_total",
    # The output monitor (model_server/modelserver/monitor.py), the OUTPUT_TRANSFORMER the
    # operator wraps every graph in: one series per class or regressor bin, any model.
    outputs_counter="modeldeploy_outputs_total",
    unreadable_counter="modeldeploy_outputs_unreadable_total",
    # The A/B pair, from our model server (``modelserver.component``): every feedback call
    # (or truth row) and the sum of its rewards, added in one metrics update, so one
    # scrape reads a count and a reward sum of the same feedback (and a failed scrape,
    # marked stale target-wide, hides both). Not the wrapper's
    # ``seldon_api_model_feedback(_reward)_total``: it skips reward 0 (``update_reward``
    # returns early). Not the executor's count of feedback requests: another scrape
    # target, read at another instant (A/A tests then name false winners; sandbox.aa_noise).
    reward_counter="modeldeploy_feedback_reward_total",
    feedback_counter="modeldeploy_feedback_total",
    namespace_label="namespace",
    deployment_label="deployment_name",
    predictor_label="predictor_name",
    # The executor's ``service`` label of a prediction: ``predictions`` over REST, the gRPC
    # method over gRPC (its interceptor labels by ``info.FullMethod``, method ``unary``).
    predict_filter='service=~"predictions|/seldon.protos.Seldon/Predict"',
    # Seldon's ``<sdep>-<predictor>`` Service, where its VirtualService routes the
    # predictor's share. A name over 63 characters is hashed and not matched by this.
    service_name="{{deployment}}-{{predictor}}",
)


class SeldonV1:
    """Seldon Core v1 as a `routers.Router`: one SeldonDeployment per ModelDeployment."""

    resource = RESOURCE
    series = SERIES

    def render(self, name: str, namespace: str, owner: Mapping[str, Any],
               predictors: Sequence[Predictor]) -> dict[str, Any]:
        return render(name, namespace, owner, predictors)

    def in_sync(self, actual: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> bool:
        return in_sync(actual, desired)

    def observe(self, actual: Mapping[str, Any] | None) -> Observation:
        return observe(actual)
