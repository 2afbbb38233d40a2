"""The chart's RBAC is enough, and no more: the operator, run exactly as shipped with
nothing but a token of the chart's ServiceAccount (TokenRequest API, as the kubelet would
mount it), performs a whole rollout; the same token is refused (403) what the operator
must not do. The pod itself cannot run on the local control plane (no kubelet), so the
operator runs as a subprocess with the pod's credentials instead."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from sandbox.harness import Objects, operator_process, wait_for
from tests.integration.seldon_player import SeldonPlayer

from .conftest import Release, new_namespace
from .scenarios import promote, promote_by_command

pytestmark = pytest.mark.cluster

STEPS = [50, 100]


@contextmanager
def operator_as(release: Release, api: client.ApiClient, tmp_path: Path, namespaces: list[str] | None,
                name: str = "operator") -> Iterator[tuple[Path, Path]]:
    """The operator as a subprocess holding only the release's ServiceAccount token."""
    kubeconfig = release.operator_kubeconfig(api, tmp_path / f"{name}.kubeconfig")
    log = tmp_path / f"{name}.log"
    proc = operator_process(kubeconfig, log, namespaces).start()
    try:
        yield kubeconfig, log
    finally:
        proc.stop()
        print(f"--- {name} log ({log}) ---\n{log.read_text()[-3000:]}")


def as_sa(kubeconfig: Path) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(kubeconfig))


def forbidden(call, *args, **kwargs) -> bool:
    """True if the API server refuses the call with 403; a success fails the test at once,
    naming the call that should have been refused."""
    try:
        call(*args, **kwargs)
    except ApiException as e:
        return e.status == 403
    raise AssertionError(f"{call.__name__}{args} was allowed; the operator must not be able to")


def whoami(api: client.ApiClient) -> str:
    review = client.AuthenticationV1Api(api).create_self_subject_review(client.V1SelfSubjectReview())
    return review.status.user_info.username


def assert_no_permission_errors(log: Path) -> None:
    text = log.read_text()
    assert "Forbidden" not in text and "forbidden" not in text and " 403" not in text, text[-3000:]


def test_clusterwide_operator_with_only_the_charts_rights_promotes_a_model(clusterwide, api, tmp_path) -> None:
    models = new_namespace(api, "md-models")
    objs = Objects(api, models)
    with SeldonPlayer(api, models), operator_as(clusterwide, api, tmp_path, None) as (kubeconfig, log):
        assert whoami(as_sa(kubeconfig)) == f"system:serviceaccount:{clusterwide.namespace}:{clusterwide.service_account}"
        promotion = promote(objs, STEPS)
    promotion.check()
    assert_no_permission_errors(log)


def test_namespaced_operator_with_only_the_charts_rights_obeys_a_promote_command(namespaced, api, tmp_path) -> None:
    # A command exercises the one write the step-walking rollout does not: removing the
    # command annotation (a JSON patch of the ModelDeployment itself).
    (watched,) = namespaced.watched
    objs = Objects(api, watched)
    with SeldonPlayer(api, watched), operator_as(namespaced, api, tmp_path, [watched]) as (_, log):
        status, annotations, reasons = promote_by_command(objs)
    assert status["lastRollout"]["result"] == "Promoted" and objs.traffic("digits") == {"2.0.0": 100}
    assert "CommandPromote" in reasons and "modeldeploy.io/command" not in annotations
    assert_no_permission_errors(log)


def test_the_service_account_is_refused_what_the_operator_must_not_do(clusterwide, api, tmp_path) -> None:
    sa = as_sa(clusterwide.operator_kubeconfig(api, tmp_path / "sa.kubeconfig"))
    core, custom = client.CoreV1Api(sa), client.CustomObjectsApi(sa)
    other = new_namespace(api, "md-other")
    # Secrets: the operator needs none (Prometheus credentials come in as environment
    # variables from the kubelet), not even in its own namespace.
    assert forbidden(core.list_secret_for_all_namespaces)
    assert forbidden(core.list_namespaced_secret, clusterwide.namespace)
    assert forbidden(core.read_namespaced_secret, "anything", other)
    assert forbidden(core.create_namespaced_secret, other, client.V1Secret(metadata=client.V1ObjectMeta(name="x")))
    # Nothing beyond its own objects: no pods, no namespaces, no CRDs, no RBAC.
    assert forbidden(core.list_namespaced_pod, other)
    assert forbidden(core.list_namespace)
    assert forbidden(client.ApiextensionsV1Api(sa).list_custom_resource_definition)
    assert forbidden(client.RbacAuthorizationV1Api(sa).list_namespaced_role, other)
    # Its own kinds only as the rollout uses them: it never creates or deletes a
    # ModelDeployment, never deletes SeldonDeployments (it watches them: a local cache).
    mdep = {"apiVersion": "modeldeploy.io/v1alpha1", "kind": "ModelDeployment", "metadata": {"name": "x"}, "spec": {}}
    assert forbidden(custom.create_namespaced_custom_object, "modeldeploy.io", "v1alpha1", other, "modeldeployments", mdep)
    assert forbidden(custom.delete_namespaced_custom_object, "modeldeploy.io", "v1alpha1", other, "modeldeployments", "x")
    assert forbidden(custom.delete_namespaced_custom_object, "machinelearning.seldon.io", "v1", other,
                     "seldondeployments", "x")
    assert forbidden(custom.patch_namespaced_custom_object, "machinelearning.seldon.io", "v1", other,
                     "seldondeployments", "x", {"metadata": {"labels": {"a": "b"}}})
    # Events are written and counted up by name, never listed.
    assert forbidden(core.list_namespaced_event, other)
    assert forbidden(core.delete_namespaced_event, "x", other)


def test_namespaced_service_account_has_no_rights_in_other_namespaces(namespaced, api, tmp_path) -> None:
    (watched,) = namespaced.watched
    other = new_namespace(api, "md-other")
    kubeconfig = namespaced.operator_kubeconfig(api, tmp_path / "sa.kubeconfig")
    custom = client.CustomObjectsApi(as_sa(kubeconfig))
    group = ("modeldeploy.io", "v1alpha1")
    # Its rights hold in the watched namespace...
    custom.list_namespaced_custom_object(*group, watched, "modeldeployments")
    # ...and nowhere else, not even its own, nor across the cluster.
    assert forbidden(custom.list_namespaced_custom_object, *group, other, "modeldeployments")
    assert forbidden(custom.list_namespaced_custom_object, *group, namespaced.namespace, "modeldeployments")
    assert forbidden(custom.list_cluster_custom_object, *group, "modeldeployments")
    assert forbidden(custom.get_namespaced_custom_object, "machinelearning.seldon.io", "v1", other,
                     "seldondeployments", "digits")
    assert forbidden(client.CoreV1Api(as_sa(kubeconfig)).list_namespaced_secret, watched)
    # Pointed at a namespace it was not installed for, the operator is refused and
    # leaves that namespace's ModelDeployment untouched.
    objs = Objects(api, other)
    objs.custom.create_namespaced_custom_object(*group, other, "modeldeployments", {
        "apiVersion": "modeldeploy.io/v1alpha1", "kind": "ModelDeployment", "metadata": {"name": "digits"},
        "spec": {"model": {"name": "digits", "version": "1.0.0", "uri": "file:///models/digits/1.0.0"}}})
    with operator_as(namespaced, api, tmp_path, [other], name="operator-elsewhere") as (_, log):
        wait_for("a 403 in the operator's log", lambda: "403" in log.read_text() or "Forbidden" in log.read_text(), 20)
    assert objs.status("digits") == {} and objs.sdep("digits") is None
    assert not (objs.mdep("digits")["metadata"].get("finalizers"))
