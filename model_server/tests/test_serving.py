"""The healthy path against a real server: predictions, health, metadata, metrics, feedback."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from seldon_core.proto import prediction_pb2, prediction_pb2_grpc
from seldon_server import Digits, SeldonServer, ndarray

LABELS = [str(d) for d in range(10)]
# Every label the wrapper puts on a custom metric when Seldon's variables are set.
SELDON_LABELS = {
    "deployment_name": "digits",  # SELDON_DEPLOYMENT_ID
    "seldon_deployment_name": "digits",  # same, pre-1.3 name
    "predictor_name": "v2-0-0",  # PREDICTOR_ID
    "predictor_version": "2.0.0",  # PREDICTOR_LABELS["version"]
    "model_name": "classifier",  # PREDICTIVE_UNIT_ID (the container name)
    "model_image": "modeldeploy/model-server",  # PREDICTIVE_UNIT_IMAGE before ':'
    "image_name": "modeldeploy/model-server",
    "model_version": "0.1.0",  # PREDICTIVE_UNIT_IMAGE tag, not the artifact version
    "image_version": "0.1.0",
}


def counters(server: SeldonServer, name: str, **match: str) -> dict[str, float]:
    """Values of `name` summed over workers, keyed by the `class` label (or "")."""
    out: dict[str, float] = {}
    for sample, labels, value in server.metrics():
        if sample == name and all(labels.get(k) == v for k, v in match.items()):
            key = labels.get("class", "")
            out[key] = out.get(key, 0.0) + value
    return out


def predicted(server: SeldonServer, images: np.ndarray) -> np.ndarray:
    response = server.predict(ndarray(images))
    assert response.status_code == 200, response.text
    return np.asarray(response.json()["data"]["ndarray"]).argmax(axis=1)


def test_health_and_metadata(good_server: SeldonServer) -> None:
    assert good_server.get("/health/ping").text == "pong"
    status = good_server.get("/health/status")
    assert status.status_code == 200
    body = status.json()["jsonData"]
    assert body["status"] == "ready" and body["version"] == "2.0.0" and body["faults"] == {}
    assert len(body["sha256"]) == 64
    meta = good_server.get("/api/v1.0/metadata").json()
    assert meta["name"] == "digits" and meta["versions"] == ["2.0.0"]
    assert meta["outputs"][0]["schema"]["names"] == LABELS


def test_predictions_are_accurate(good_server: SeldonServer, digits: Digits) -> None:
    X, y = digits
    response = good_server.predict(ndarray(X))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"]["names"] == LABELS
    probs = np.asarray(body["data"]["ndarray"])
    assert probs.shape == (len(X), 10)
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-4)
    assert (probs.argmax(axis=1) == y).mean() >= 0.95
    assert body["meta"]["tags"] == {"model_name": "digits", "model_version": "2.0.0"}


def test_other_payload_forms(good_server: SeldonServer, digits: Digits) -> None:
    X, y = digits
    shaped = good_server.predict(ndarray(X[:5].reshape(5, 8, 8)))
    assert shaped.status_code == 200, shaped.text
    tensor = good_server.predict({"data": {"tensor": {"shape": [5, 64], "values": X[:5].ravel().tolist()}}})
    assert tensor.status_code == 200, tensor.text
    assert np.asarray(tensor.json()["data"]["tensor"]["shape"]).tolist() == [5, 10]
    a = np.asarray(shaped.json()["data"]["ndarray"]).argmax(axis=1)
    b = np.asarray(tensor.json()["data"]["tensor"]["values"]).reshape(5, 10).argmax(axis=1)
    assert a.tolist() == b.tolist()


def test_grpc_predict(good_server: SeldonServer, digits: Digits) -> None:
    X, y = digits
    with grpc.insecure_channel(f"127.0.0.1:{good_server.grpc_port}") as channel:
        stub = prediction_pb2_grpc.ModelStub(channel)
        msg = prediction_pb2.SeldonMessage(
            data=prediction_pb2.DefaultData(tensor=prediction_pb2.Tensor(shape=[3, 64], values=X[:3].ravel().tolist()))
        )
        reply = stub.Predict(msg, timeout=10)
        scores = np.asarray(reply.data.tensor.values).reshape(3, 10)
        assert scores.argmax(axis=1).tolist() == y[:3].tolist()
        with pytest.raises(grpc.RpcError, match="wrong shape"):
            bad = prediction_pb2.SeldonMessage(
                data=prediction_pb2.DefaultData(tensor=prediction_pb2.Tensor(shape=[1, 3], values=[1, 2, 3]))
            )
            stub.Predict(bad, timeout=10)


def test_output_class_counter(good_server: SeldonServer, digits: Digits) -> None:
    X, _ = digits
    before = counters(good_server, "modeldeploy_predictions_total")
    classes = predicted(good_server, X[:300])
    after = counters(good_server, "modeldeploy_predictions_total")
    # Every class is exported (at 0 at first) so rates see all series from the start.
    assert sorted(after) == LABELS
    expected = np.bincount(classes, minlength=10)
    assert [after[c] - before.get(c, 0.0) for c in LABELS] == expected.tolist()

    samples = [(n, lab) for n, lab, _ in good_server.metrics() if n == "modeldeploy_predictions_total"]
    for _, labels in samples:
        assert {k: labels[k] for k in SELDON_LABELS} == SELDON_LABELS
        assert labels["method"] == "predict" and labels["worker_id"].isdigit()
        assert set(labels) == {*SELDON_LABELS, "class", "method", "worker_id"}


def test_failed_requests_are_not_counted(good_server: SeldonServer) -> None:
    before = counters(good_server, "modeldeploy_predictions_total")
    assert good_server.predict(ndarray([[1.0, 2.0]])).status_code == 400
    assert counters(good_server, "modeldeploy_predictions_total") == before


def feedback_totals(server: SeldonServer, prefix: str = "modeldeploy") -> tuple[float, float]:
    n = counters(server, f"{prefix}_feedback_total", method="feedback").get("", 0.0)
    r = counters(server, f"{prefix}_feedback_reward_total", method="feedback").get("", 0.0)
    return n, r


def test_feedback_with_truth_scores_each_row(good_server: SeldonServer, digits: Digits) -> None:
    X, y = digits
    # Deliberately wrong truths for some rows, so the reward is not simply n.
    truth = y[:40].copy()
    truth[:7] = (truth[:7] + 1) % 10
    correct = int((predicted(good_server, X[:40]) == truth).sum())
    assert correct < 40
    n0, r0 = feedback_totals(good_server)
    response = good_server.feedback({"request": ndarray(X[:40]), "truth": ndarray(truth)})
    assert response.status_code == 200, response.text
    n1, r1 = feedback_totals(good_server)
    assert (n1 - n0, r1 - r0) == (40, correct)


def test_feedback_truth_forms(good_server: SeldonServer, digits: Digits) -> None:
    X, y = digits
    n0, r0 = feedback_totals(good_server)
    as_strings = good_server.feedback({"request": ndarray(X[:2]), "truth": ndarray([str(v) for v in y[:2]])})
    one_hot = good_server.feedback({"request": ndarray(X[:2]), "truth": ndarray(np.eye(10)[y[:2]])})
    assert as_strings.status_code == 200 and one_hot.status_code == 200, (as_strings.text, one_hot.text)
    n1, r1 = feedback_totals(good_server)
    assert (n1 - n0, r1 - r0) == (4, 4)


def test_feedback_with_reward_counts_every_call(good_server: SeldonServer, digits: Digits) -> None:
    X, y = digits
    n0, r0 = feedback_totals(good_server)
    w0 = feedback_totals(good_server, "seldon_api_model")
    # A client-given reward wins, even against the truth.
    assert good_server.feedback({"request": ndarray(X[:1]), "reward": 1}).status_code == 200
    wrong = ndarray([int(y[0] + 1) % 10])
    assert good_server.feedback({"request": ndarray(X[:1]), "truth": wrong, "reward": 0.5}).status_code == 200
    # Reward 0 and no truth: one negative feedback.
    assert good_server.feedback({"request": ndarray(X[:1]), "reward": 0}).status_code == 200
    n1, r1 = feedback_totals(good_server)
    assert (n1 - n0, r1 - r0) == (3, 1.5)
    # Why the A/B test does not use the wrapper's own counters: seldon-core 1.17.1 skips
    # reward 0, so its count is of rewarded feedback only (2 here, not 3).
    w1 = feedback_totals(good_server, "seldon_api_model")
    assert (w1[0] - w0[0], w1[1] - w0[1]) == (2, 1.5)


def test_feedback_count_and_reward_are_one_pair_of_series(good_server: SeldonServer, digits: Digits) -> None:
    # Same labels (so the same worker's pair) in the same exposition: one scrape reads both.
    X, y = digits
    assert good_server.feedback({"request": ndarray(X[:3]), "truth": ndarray(y[:3])}).status_code == 200
    labels = {name: sorted(tuple(sorted(lab.items())) for n, lab, _ in good_server.metrics() if n == name)
              for name in ("modeldeploy_feedback_total", "modeldeploy_feedback_reward_total")}
    assert labels["modeldeploy_feedback_total"] and labels["modeldeploy_feedback_total"] == labels[
        "modeldeploy_feedback_reward_total"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"request": ndarray([[0.0] * 64]), "truth": ndarray(["x"])}, "not one of the labels"),
        ({"request": ndarray([[0.0] * 64] * 2), "truth": ndarray([1])}, "1 label(s) but the request has 2 row(s)"),
        ({"truth": ndarray([1])}, "request.data: empty payload"),
        ({"request": ndarray([[0.0] * 3]), "truth": ndarray([1])}, "request.data: wrong shape"),
    ],
    ids=["unknown-label", "count-mismatch", "no-images", "bad-images"],
)
def test_bad_feedback_is_400(good_server: SeldonServer, payload: dict, message: str) -> None:
    n0, r0 = feedback_totals(good_server)
    response = good_server.feedback(payload)
    assert response.status_code == 400, response.text
    assert message in response.json()["status"]["info"]
    assert feedback_totals(good_server) == (n0, r0)
