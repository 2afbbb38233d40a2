"""Seldon rendering and status reading against what Seldon Core 1.17 writes.

Expected Deployment names are spelled out or hashed here with hashlib directly (Seldon's
GetDeploymentName: md5 of the long name), not via the code under test."""

from __future__ import annotations

import hashlib

from modeldeploy import routing
from modeldeploy.routers import seldon_v1 as seldon
from modeldeploy.spec import ModelSpec

OWNER = {"apiVersion": "modeldeploy.io/v1alpha1", "kind": "ModelDeployment",
         "metadata": {"name": "x", "uid": "u"}}


def pred(version: str, traffic: int, name: str = "digits", taken: str | None = None, sha: str | None = None,
         shadow: bool = False) -> routing.Predictor:
    model = ModelSpec(name=name, version=version, uri=f"s3://b/{version}", sha256=sha)
    return routing.Predictor(routing.predictor_name(version, taken), version, model, traffic, shadow)


def sdep(name: str, preds: list[routing.Predictor], status: dict | None = None) -> dict:
    body = seldon.render(name, "ns", OWNER, preds)
    if status is not None:
        body["status"] = status
    return body


def md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()  # noqa: S324


def test_short_names_are_sdep_predictor_index_container() -> None:
    sd = sdep("digits", [pred("2.0.0", 100)])
    assert seldon.deployment_names("digits", sd["spec"]["predictors"][0]) == [("digits-v2-0-0-0-digits",)]


def test_names_over_63_characters_are_hashed_as_seldon_does() -> None:
    # The example: 25 + 1 + 15 + 3 + 25 = 69 characters.
    sd = sdep("customer-churn-prediction", [pred("2024.06.01-rc1", 100, name="customer-churn-classifier")])
    long = "customer-churn-prediction-v2024-06-01-rc1-0-customer-churn-classifier"
    assert len(long) == 69
    names = seldon.deployment_names("customer-churn-prediction", sd["spec"]["predictors"][0])
    assert names == [(f"seldon-{md5(long)}", f"customer-churn-prediction-{md5(long)}")]
    ready = {"state": "Available", "deploymentStatus": {f"seldon-{md5(long)}": {"replicas": 1, "availableReplicas": 1}}}
    assert seldon.observe(sdep("customer-churn-prediction", [pred("2024.06.01-rc1", 100, name="customer-churn-classifier")],
                               ready)).is_ready("v2024-06-01-rc1")


def test_exactly_63_characters_is_not_hashed() -> None:
    name = "a" * (63 - len("-v1-0-digits"))
    sd = sdep(name, [pred("1", 100)])
    assert seldon.deployment_names(name, sd["spec"]["predictors"][0]) == [(f"{name}-v1-0-digits",)]


def test_colliding_version_prefixes_do_not_make_a_candidate_ready() -> None:
    # Stable "2" (predictor v2) is ready; candidate "2.0" (v2-0) has no Deployment yet.
    # A prefix match on "digits-v2-" would see the stable's Deployment as the candidate's.
    preds = [pred("2", 100), pred("2.0", 0, taken="v2")]
    assert [p.name for p in preds] == ["v2", "v2-0"]
    obs = seldon.observe(sdep("digits", preds, {"state": "Creating", "deploymentStatus": {
        "digits-v2-0-digits": {"replicas": 1, "availableReplicas": 1}}}))
    assert obs.is_ready("v2") and not obs.is_ready("v2-0") and obs.failure("v2-0") is None


def test_available_below_replicas_is_not_ready() -> None:
    preds = [pred("1", 100)]
    for entry in ({"replicas": 2, "availableReplicas": 1}, {"replicas": 1}, {}):
        obs = seldon.observe(sdep("d", preds, {"state": "Available", "deploymentStatus": {"d-v1-0-digits": entry}}))
        assert not obs.is_ready("v1"), entry
    obs = seldon.observe(sdep("d", preds, {"state": "Creating", "deploymentStatus": {
        "d-v1-0-digits": {"replicas": 2, "availableReplicas": 2}}}))
    assert obs.is_ready("v1") and obs.available["v1"] == (2, 2)


def test_a_server_that_dies_later_is_no_longer_ready() -> None:
    preds = [pred("1", 50), pred("2", 50)]
    before = {"state": "Available", "deploymentStatus": {
        "d-v1-0-digits": {"replicas": 1, "availableReplicas": 1}, "d-v2-0-digits": {"replicas": 1, "availableReplicas": 1}}}
    after = {"state": "Creating", "deploymentStatus": {
        "d-v1-0-digits": {"replicas": 1, "availableReplicas": 1}, "d-v2-0-digits": {"replicas": 1}}}
    assert seldon.observe(sdep("d", preds, before)).is_ready("v2")
    obs = seldon.observe(sdep("d", preds, after))
    assert obs.is_ready("v1") and not obs.is_ready("v2") and obs.failure("v2") is None


def test_failed_state_is_the_failure_of_unready_predictors_only() -> None:
    preds = [pred("1", 100), pred("2", 0)]
    obs = seldon.observe(sdep("d", preds, {
        "state": "Failed", "description": "Deployment is no longer progressing and not available.",
        "deploymentStatus": {"d-v1-0-digits": {"replicas": 1, "availableReplicas": 1}, "d-v2-0-digits": {"replicas": 1}}}))
    assert obs.failure("v1") is None and obs.is_ready("v1")
    assert "no longer progressing" in obs.failure("v2") and "0/1" in obs.failure("v2")
    assert not obs.is_ready("v2")


def test_failed_before_any_deployment_exists_is_a_failure() -> None:
    # Seldon's updateStatusForError: state Failed with the error, no deploymentStatus.
    obs = seldon.observe(sdep("d", [pred("1", 100)], {"state": "Failed", "description": "admission webhook denied"}))
    assert "admission webhook denied" in obs.failure("v1")


def test_no_status_yet_is_neither_ready_nor_failed() -> None:
    obs = seldon.observe(sdep("d", [pred("1", 100)]))
    assert obs.exists and not obs.is_ready("v1") and obs.failure("v1") is None
    assert not seldon.observe(None).exists


def test_entries_of_removed_predictors_are_ignored() -> None:
    # Seldon removes a Deployment's entry only once the Deployment is gone.
    obs = seldon.observe(sdep("d", [pred("1", 100)], {"state": "Available", "deploymentStatus": {
        "d-v1-0-digits": {"replicas": 1, "availableReplicas": 1}, "d-v0-0-digits": {"replicas": 1}}}))
    assert obs.ready == {"v1"} and obs.available.keys() == {"v1"}


def test_predictor_names_are_unique_per_live_version() -> None:
    assert routing.predictor_name("2") != routing.predictor_name("2.0")
    stable = routing.predictor_name("1.0")
    cand = routing.predictor_name("1-0", taken=stable)
    assert cand != stable and cand.startswith("v1-0-")
    # Exact names then keep their Deployments apart.
    preds = [pred("1.0", 100), pred("1-0", 0, taken=stable)]
    sd = sdep("d", preds)
    names = [seldon.deployment_names("d", p) for p in sd["spec"]["predictors"]]
    assert names[0] != names[1]


def test_fingerprint_sees_a_sha256_only_change_and_a_manual_parameter_edit() -> None:
    a = sdep("d", [pred("1", 100, sha="a" * 64)])
    b = sdep("d", [pred("1", 100, sha="b" * 64)])
    assert not seldon.in_sync(a, b)
    edited = sdep("d", [pred("1", 100, sha="a" * 64)])
    edited["spec"]["predictors"][0]["graph"]["parameters"][0]["value"] = "/tmp/other"
    assert not seldon.in_sync(edited, a)
    assert seldon.in_sync(sdep("d", [pred("1", 100, sha="a" * 64)]), a)


def test_fingerprint_ignores_what_the_webhook_defaults() -> None:
    a = sdep("d", [pred("1", 100)])
    defaulted = sdep("d", [pred("1", 100)])
    p = defaulted["spec"]["predictors"][0]
    p["graph"]["implementation"] = "UNKNOWN_IMPLEMENTATION"
    p["componentSpecs"][0]["spec"]["containers"][0]["resources"] = {}
    p["engineResources"] = {}
    assert seldon.in_sync(defaulted, a)


def test_predictor_service_name_follows_seldon() -> None:
    sd = sdep("digits", [pred("2.0.0", 100)])
    assert seldon.predictor_service_name("digits", sd["spec"]["predictors"][0]) == "digits-v2-0-0"
    long = "m" * 60
    assert seldon.predictor_service_name(long, sd["spec"]["predictors"][0]) == f"seldon-{md5(long + '-v2-0-0')}"
    p = dict(sd["spec"]["predictors"][0], annotations={"seldon.io/svc-name": "custom"})
    assert seldon.predictor_service_name("digits", p) == "custom"
