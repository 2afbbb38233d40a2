"""Every kind of bad prediction payload gets HTTP 400 and a message that says what is wrong."""

from __future__ import annotations

import json

import pytest
from seldon_server import SeldonServer

ROW = [0.0] * 64

CASES = {
    # name: (request body as JSON text, expected words in status.info)
    "wrong-width": ({"data": {"ndarray": [[1.0, 2.0, 3.0]]}}, "wrong shape [1, 3]: expected [n, 8, 8] or [n, 64]"),
    "wrong-rank": ({"data": {"ndarray": [[[ROW]]]}}, "wrong shape [1, 1, 1, 64]"),
    "no-batch": ({"data": {"ndarray": ROW}}, "no batch"),
    "ragged": ({"data": {"ndarray": [ROW, ROW[:10]]}}, "cannot read the data"),
    "tensor-shape": ({"data": {"tensor": {"shape": [2, 64], "values": ROW}}}, "cannot reshape"),
    "nan": ("NaN", "NaN or infinite values in row(s) [0]"),
    "infinity": ("Infinity", "NaN or infinite values in row(s) [0]"),
    "out-of-range": ({"data": {"ndarray": [ROW[:-1] + [17.0]]}}, "out of range [0, 16]"),
    "negative": ({"data": {"ndarray": [[-1.0] + ROW[1:]]}}, "out of range [0, 16]"),
    "strings": ({"data": {"ndarray": [["a"] * 64]}}, "values must be numbers"),
    "nulls": ({"data": {"ndarray": [[None] * 64]}}, "values must be numbers"),
    "booleans": ({"data": {"ndarray": [[True] * 64]}}, "values must be numbers"),
    "empty-ndarray": ({"data": {"ndarray": []}}, "empty payload"),
    "empty-row": ({"data": {"ndarray": [[]]}}, "empty payload"),
    "no-data-field": ({"data": {"names": ["x"]}}, "empty payload"),
    "strData": ({"strData": "seven"}, "got strData"),
    "jsonData": ({"jsonData": {"image": ROW}}, "got jsonData"),
    "binData": ({"binData": "AAEC"}, "got binData"),
    "not-an-object": ([ROW], "Invalid request data type"),
    "no-payload-key": ({"meta": {}}, "Invalid request data type"),
}


def body(spec: object) -> str:
    if spec in ("NaN", "Infinity"):
        # JSON has no NaN, but Python's parser (Flask's) accepts the literal.
        return json.dumps({"data": {"ndarray": [ROW]}}).replace("0.0]]", f"{spec}]]")
    return json.dumps(spec)


@pytest.mark.parametrize(("spec", "message"), list(CASES.values()), ids=list(CASES))
def test_bad_payload_is_400(good_server: SeldonServer, spec: object, message: str) -> None:
    response = good_server.predict_raw(body(spec))
    assert response.status_code == 400, response.text
    assert message in response.json()["status"]["info"]


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [("{not json", "application/json"), ("", "application/json"), ("1,2,3", "text/plain")],
    ids=["invalid-json", "empty-body", "not-json"],
)
def test_unparseable_body_is_400(good_server: SeldonServer, raw: str, content_type: str) -> None:
    response = good_server.predict_raw(raw, content_type)
    assert response.status_code == 400, response.text
    assert response.json()["status"]["info"]


def test_server_survives_bad_payloads(good_server: SeldonServer) -> None:
    assert good_server.process.running()
    assert good_server.predict({"data": {"ndarray": [ROW]}}).status_code == 200
