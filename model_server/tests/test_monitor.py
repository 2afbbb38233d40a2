"""The output monitor on the real wrapper: responses pass through unchanged, outputs
are counted by class or bin, unreadable responses are counted and logged."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator

import grpc
import numpy as np
import pytest
from google.protobuf import json_format
from seldon_core.proto import prediction_pb2, prediction_pb2_grpc
from seldon_server import Digits, Launcher, SeldonServer, ndarray, seldon_env, stop_all

from modelserver.launch import MONITOR_INTERFACE
from modelserver.monitor import REASONS, Binning, parse_config

OUTPUTS, UNREADABLE = "modeldeploy_outputs_total", "modeldeploy_outputs_unreadable_total"
BINS = "[0, 100, 200]"
BIN_LABELS = ["(-inf,0)", "[0,100)", "[100,200)", "[200,+inf)", "NaN"]


@pytest.fixture(scope="module")
def monitors(launch: Launcher) -> Iterator[dict[str, SeldonServer]]:
    def start(name: str, params: dict) -> SeldonServer:
        env = seldon_env("digits", "v2-0-0", "2.0.0", unit="output-monitor", image="modeldeploy/model-server:0.1.0")
        env["INCLUDE_METRICS_IN_CLIENT_RESPONSE"] = "false"  # as the operator renders it
        return launch(f"monitor-{name}", params, env, interface=MONITOR_INTERFACE)

    servers = {
        "classifier": start("classifier", {}),
        "regressor": start("regressor", {"bins": BINS}),
        "fine": start("fine", {"kind": "regressor"}),
        "misconfigured": start("misconfigured", {"kind": "regresor"}),
    }
    for server in servers.values():
        server.wait_serving()
    yield servers
    stop_all(list(servers.values()))


def transform(server: SeldonServer, message: object) -> dict:
    text = message if isinstance(message, str) else json.dumps(message)
    response = server.session.post(server.url + "/transform-output", data=text,
                                   headers={"Content-Type": "application/json"}, timeout=10)  # fmt: skip
    assert response.status_code == 200, response.text
    return response.json()


def counts(server: SeldonServer, name: str, label: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for sample, labels, value in server.metrics():
        if sample == name:
            out[labels[label]] = out.get(labels[label], 0.0) + value
    return out


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0)}


def test_classifier_response_passes_through_and_is_counted(
    monitors: dict[str, SeldonServer], good_server: SeldonServer, digits: Digits
) -> None:
    X, _ = digits
    model_response = good_server.predict(ndarray(X[:60])).json()
    # The model's wrapper puts its own counts in meta.metrics: they must not be
    # exported again as the monitor's, and they are the one part not passed through.
    own = model_response["meta"].pop("metrics")
    assert {m["key"] for m in own} == {"modeldeploy_predictions_total"}
    monitor = monitors["classifier"]
    before = counts(monitor, OUTPUTS, "output")
    assert transform(monitor, {**model_response, "meta": {**model_response["meta"], "metrics": own}}) == model_response
    after = counts(monitor, OUTPUTS, "output")
    predicted = np.asarray(model_response["data"]["ndarray"]).argmax(axis=1)
    expected = {str(c): float(n) for c, n in enumerate(np.bincount(predicted, minlength=10)) if n}
    assert delta(before, after) == expected
    # Every class of the response's names is exported (at 0 if never predicted).
    assert sorted(after) == [str(d) for d in range(10)]
    for name, labels, _ in monitor.metrics():
        if name == OUTPUTS:
            assert labels["method"] == "outputtransform" and labels["model_name"] == "output-monitor"
            assert labels["predictor_name"] == "v2-0-0" and labels["deployment_name"] == "digits"
    assert not [s for s in monitor.metrics() if s[0] == "modeldeploy_predictions_total"]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"ndarray": ["cat", "dog", "cat"]}, {"cat": 2, "dog": 1}),
        ({"ndarray": [[7], [7], [3]]}, {"7": 2, "3": 1}),
        ({"ndarray": [1.0, 0.0]}, {"1": 1, "0": 1}),
        ({"tensor": {"shape": [2, 3], "values": [0.1, 0.7, 0.2, 0.9, 0.05, 0.05]}}, {"1": 1, "0": 1}),
        ({"names": ["a", "b"], "ndarray": [[0.2, 0.8], [0.3, 0.7]]}, {"b": 2}),
    ],
    ids=["string-labels", "int-label-column", "integral-floats", "tensor-scores-no-names", "named-scores"],
)
def test_classifier_outputs(monitors: dict[str, SeldonServer], data: dict, expected: dict) -> None:
    monitor = monitors["classifier"]
    before = counts(monitor, OUTPUTS, "output")
    message = {"data": data, "meta": {"puid": "x", "routing": {"a": 1}}}
    assert transform(monitor, message) == message
    assert delta(before, counts(monitor, OUTPUTS, "output")) == expected


def test_regressor_response_is_binned(monitors: dict[str, SeldonServer]) -> None:
    monitor = monitors["regressor"]
    assert monitor.get("/health/status").json()["jsonData"] == {"status": "ready", "kind": "regressor",
                                                                 "bins": [0.0, 100.0, 200.0]}  # fmt: skip
    before = counts(monitor, OUTPUTS, "output")
    # JSON has no NaN, but the wrapper's parser (Python's) accepts the literal.
    text = '{"data": {"names": ["y"], "ndarray": [[-5], [0], [50.5], [100], [199.9], [250], [NaN]]}, "meta": {}}'
    assert json.dumps(transform(monitor, text)) == json.dumps(json.loads(text))
    after = counts(monitor, OUTPUTS, "output")
    assert delta(before, after) == {"(-inf,0)": 1, "[0,100)": 2, "[100,200)": 2, "[200,+inf)": 1, "NaN": 1}
    assert sorted(after) == sorted(BIN_LABELS)
    transform(monitor, {"data": {"tensor": {"shape": [3], "values": [1, 2, 300]}}})
    assert delta(after, counts(monitor, OUTPUTS, "output")) == {"[0,100)": 2, "[200,+inf)": 1}


def test_a_regressor_without_bins_is_counted_on_the_fine_grid(monitors: dict[str, SeldonServer]) -> None:
    monitor = monitors["fine"]
    assert monitor.get("/health/status").json()["jsonData"] == {"status": "ready", "kind": "regressor",
                                                                 "bins": "fine grid, 20 per decade"}  # fmt: skip
    before = counts(monitor, OUTPUTS, "output")
    text = '{"data": {"ndarray": [151.3, 140, 346, -1.07, 0, 2e13, NaN]}, "meta": {}}'
    assert json.dumps(transform(monitor, text)) == json.dumps(json.loads(text))
    assert delta(before, counts(monitor, OUTPUTS, "output")) == {
        "[140,160)": 2, "[315,355)": 1, "[-1.12,-1)": 1, "[-1e-09,1e-09)": 1, "[1000000000000,+inf)": 1, "NaN": 1}


# The notation the operator parses (operator/modeldeploy/analysis/output_bins.py).
NUMBER = r"[-+]?(?:\d+\.?\d*(?:e[-+]?\d+)?|\d*\.\d+(?:e[-+]?\d+)?)"
INTERVAL = re.compile(rf"^(?:\[({NUMBER})|\(-inf),(?:({NUMBER})\)|\+inf\))$")


def test_the_fine_grid_tiles_the_real_line_in_the_operators_notation() -> None:
    labels = Binning.fine_grid().labels
    assert labels[-1] == "NaN" and len(set(labels)) == len(labels) - 1  # the zero bin is in both halves
    bounds = []
    for label in set(labels) - {"NaN"}:
        m = INTERVAL.match(label)
        assert m, label
        bounds.append((float(m.group(1) or "-inf"), float(m.group(2) or "inf")))
    bounds.sort()
    assert bounds[0][0] == -math.inf and bounds[-1][1] == math.inf
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:])), "contiguous, no gaps, no overlaps"
    ratios = [b / a for a, b in bounds if 1e-9 <= a and math.isfinite(b)]
    assert 1.11 < min(ratios) and max(ratios) < 1.145  # 20 per decade, 11-14 % apart
    # Each value lands in the bin whose bounds hold it.
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.lognormal(0, 8, 2000) * rng.choice([-1, 1], 2000), [0.0, -0.0, 1.0, -1.0]])
    binning = Binning.fine_grid()
    labels = binning.label(values)  # the numpy path (more than SMALL_BATCH values)
    assert labels == [binning.label(np.array([v]))[0] for v in values.tolist()], "the plain-Python path agrees"
    for v, label in zip(values.tolist(), labels):
        m = INTERVAL.match(label)
        assert m and float(m.group(1) or "-inf") <= v < float(m.group(2) or "inf"), (v, label)
    spec_bins = Binning.of_edges((0.0, 100.0, 200.0))
    mixed = np.array([-5.0, 0.0, 100.0, 199.9, 250.0, math.nan] * 5)
    assert spec_bins.label(mixed) == [spec_bins.label(np.array([v]))[0] for v in mixed.tolist()]


UNREADABLE_CASES = {
    "strData": ("classifier", {"strData": "seven"}, "no_data"),
    "jsonData": ("classifier", {"jsonData": {"label": 7}}, "no_data"),
    "no-data": ("classifier", {"meta": {}}, "no_data"),
    "empty": ("classifier", {"data": {"ndarray": []}}, "empty"),
    "ragged": ("classifier", {"data": {"tensor": {"shape": [2, 2], "values": [1, 2, 3]}}}, "shape"),
    "rank-3": ("classifier", {"data": {"ndarray": [[[0.5, 0.5]]]}}, "shape"),
    "non-integer-floats": ("classifier", {"data": {"ndarray": [0.25, 3.5]}}, "not_a_label"),
    "null-scores": ("classifier", {"data": {"ndarray": [[None, 0.5]]}}, "not_numeric"),
    "strings-for-regressor": ("regressor", {"data": {"ndarray": ["high"]}}, "not_numeric"),
    "multi-output-regressor": ("regressor", {"data": {"ndarray": [[1.0, 2.0]]}}, "shape"),
    "misconfigured": ("misconfigured", {"data": {"ndarray": [[0.1, 0.9]]}}, "bad_config"),
}


@pytest.mark.parametrize("case", list(UNREADABLE_CASES))
def test_unreadable_response_passes_through(monitors: dict[str, SeldonServer], case: str) -> None:
    which, message, reason = UNREADABLE_CASES[case]
    monitor = monitors[which]
    before = counts(monitor, UNREADABLE, "reason")
    outputs = counts(monitor, OUTPUTS, "output")
    # Unchanged, but for an empty meta where there was none (the counts travel in
    # meta.metrics, which the wrapper removes; every wrapper response has a meta anyway).
    assert transform(monitor, message) == {"meta": {}, **message}
    after = counts(monitor, UNREADABLE, "reason")
    assert delta(before, after) == {reason: 1}
    assert set(after) <= set(REASONS)
    assert counts(monitor, OUTPUTS, "output") == outputs
    assert f"output monitor cannot read a response, passed it through ({reason})" in monitor.log()


def test_misconfigured_monitor_is_unready(monitors: dict[str, SeldonServer]) -> None:
    status = monitors["misconfigured"].get("/health/status")
    assert status.status_code == 503
    assert "kind='regresor' must be one of classifier, regressor" in status.json()["status"]["info"]


def test_bad_requests_to_the_monitor_are_400(monitors: dict[str, SeldonServer]) -> None:
    monitor = monitors["classifier"]
    response = monitor.session.post(monitor.url + "/transform-output", data={"json": "{bad"}, timeout=10)
    assert response.status_code == 400 and 'form field "json"' in response.json()["status"]["info"]


def test_grpc_response_passes_through(monitors: dict[str, SeldonServer]) -> None:
    monitor = monitors["classifier"]
    before = counts(monitor, OUTPUTS, "output")
    message = json_format.ParseDict(
        {"data": {"names": ["a", "b"], "tensor": {"shape": [3, 2], "values": [0.9, 0.1, 0.2, 0.8, 0.4, 0.6]}},
         "meta": {"puid": "p"}},
        prediction_pb2.SeldonMessage(),
    )  # fmt: skip
    with grpc.insecure_channel(f"127.0.0.1:{monitor.grpc_port}") as channel:
        reply = prediction_pb2_grpc.OutputTransformerStub(channel).TransformOutput(message, timeout=10)
    assert reply == message
    assert delta(before, counts(monitor, OUTPUTS, "output")) == {"a": 1, "b": 2}


@pytest.mark.parametrize(
    ("kind", "bins", "words"),
    [
        ("", "abc", "must be a JSON list of numbers"),
        ("", "[2, 1]", "strictly increasing"),
        ("", "[]", "must be a JSON list of numbers"),
        ("classifier", "[1]", "bins are for kind=regressor"),
        ("scorer", "", "kind='scorer' must be one of"),
    ],
)
def test_bad_settings(kind: str, bins: str, words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("(", r"\(")):
        parse_config(kind, bins)
