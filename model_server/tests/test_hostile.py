"""Hostile input cannot hurt: every malformed request is a 4xx with a message (whether
the wrapper's own parsing or ours fails), large bodies are refused unread, a slow
client holds one worker only, and a client cannot write the server's metrics."""

from __future__ import annotations

import gzip
import json
import socket
from pathlib import Path
from typing import Any

import pytest
import requests
from seldon_server import Launcher, SeldonServer, ndarray

ROW = [0.0] * 64
GOOD = ndarray([ROW])
P, F = "/api/v1.0/predictions", "/api/v1.0/feedback"
JSON = {"Content-Type": "application/json"}
LIMIT = 4 * 1024 * 1024  # modelserver.guard.DEFAULT_MAX_REQUEST_BYTES


def form(value: str) -> dict[str, Any]:
    return {"data": {"json": value}}


def body(text: str | bytes, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {"data": text, "headers": JSON if headers is None else headers}


# name: (method, path, requests kwargs, expected status, words expected in status.info)
CORPUS: dict[str, tuple[str, str, dict[str, Any], int, str]] = {
    # The encodings the wrapper's get_request accepts, broken in each.
    "form-json-broken": ("POST", P, form("{bad"), 400, 'form field "json": JSONDecodeError'),
    "form-json-bad-utf8": ("POST", P, body(b"json=%ff%fe{", {"Content-Type": "application/x-www-form-urlencoded"}),
                           400, 'form field "json": JSONDecodeError'),
    "form-json-not-object": ("POST", P, form("[1, 2]"), 400, "Invalid request data type"),
    "form-json-wrong-shape": ("POST", P, form(json.dumps(ndarray([[1, 2]]))), 400, "wrong shape [1, 2]"),
    "query-json-broken": ("POST", P, {"params": {"json": "{bad"}}, 400, 'query parameter "json": JSONDecodeError'),
    "query-json-strings": ("POST", P, {"params": {"json": json.dumps(ndarray([["a"] * 64]))}}, 400,
                           "values must be numbers"),
    "get-predict-query-broken": ("GET", "/predict", {"params": {"json": "[[["}}, 400, 'query parameter "json"'),
    "multipart-broken-field": ("POST", P, {"files": {"data": (None, "{bad")}}, 400, "multipart/form-data field"),
    "multipart-strdata-bad-utf8": ("POST", P, {"files": {"strData": ("s.txt", b"\xff\xfe")}}, 400,
                                   "UnicodeDecodeError"),
    "multipart-bindata": ("POST", P, {"files": {"binData": ("b.bin", b"\x00\x01")}}, 400, "got binData"),
    "multipart-no-boundary": ("POST", P, body("x", {"Content-Type": "multipart/form-data"}), 400,
                              "Invalid request data type"),
    "json-bad-utf8": ("POST", P, body(b'{"data": "\xff"}'), 400, "invalid JSON: UnicodeDecodeError"),
    "json-utf16-broken": ("POST", P, body("{bad".encode("utf-16")), 400, "invalid JSON"),
    "json-truncated": ("POST", P, body('{"data": {"ndarray": [[1,'), 400, "invalid JSON: JSONDecodeError"),
    "json-deep-nesting": ("POST", P, body("[" * 100_000 + "]" * 100_000), 400, "RecursionError"),
    "json-gzipped": ("POST", P, body(gzip.compress(json.dumps(GOOD).encode()), {**JSON, "Content-Encoding": "gzip"}),
                     400, "invalid JSON"),
    "empty-body": ("POST", P, body(""), 400, "invalid JSON"),
    "text-plain": ("POST", P, body("1,2,3", {"Content-Type": "text/plain"}), 400, "Can't find JSON in data"),
    "no-content-type": ("POST", P, body(json.dumps(GOOD).encode(), {}), 400, "Content-Type not set"),
    # Valid JSON the wrapper or the model cannot use.
    "meta-not-object": ("POST", P, {"json": {**GOOD, "meta": "x"}}, 400, "meta must be a JSON object"),
    "meta-tags-list": ("POST", P, {"json": {**GOOD, "meta": {"tags": [1]}}}, 400, "meta.tags must be an object"),
    "meta-request-path-list": ("POST", P, {"json": {**GOOD, "meta": {"requestPath": []}}}, 400,
                               "meta.requestPath must be an object"),
    "data-not-object": ("POST", P, {"json": {"data": 5}}, 400, "cannot read the data"),
    "tensor-without-shape": ("POST", P, {"json": {"data": {"tensor": {"values": [1]}}}}, 400, "cannot read the data"),
    "tensor-shape-string": ("POST", P, {"json": {"data": {"tensor": {"shape": "x", "values": [1]}}}}, 400,
                            "cannot read the data"),
    "tftensor": ("POST", P, {"json": {"data": {"tftensor": {}}}}, 400, "cannot read the data"),
    "bindata-not-base64": ("POST", P, {"json": {"binData": "!!!"}}, 400, "got binData"),
    "huge-integers": ("POST", P, {"json": ndarray([[10**400] * 64])}, 400, "values must be numbers"),
    "number-overflow": ("POST", P, body(json.dumps(GOOD).replace("0.0]]", "1e999]]")), 400, "NaN or infinite"),
    "nesting-beyond-numpy": ("POST", P, body('{"data": {"ndarray": ' + "[" * 500 + "]" * 500 + "}}"), 400,
                             "cannot read the data"),
    "object-rows": ("POST", P, {"json": ndarray([{"a": 1}])}, 400, "values must be numbers"),
    # Wrong method or path: Werkzeug's 404/405, which the wrapper's handler made 500s.
    "get-predictions": ("GET", P, {}, 404, "predictions are POST /api/v1.0/predictions"),
    "put-predictions": ("PUT", P, {"json": GOOD}, 405, "method not allowed"),
    "unknown-path": ("POST", "/api/v1.0/predict", {"json": GOOD}, 405, "predictions are POST"),
    # Feedback: the wrapper converts it to a proto and reads its arrays before our code.
    "feedback-not-object": ("POST", F, {"json": [1]}, 400, "send a JSON Feedback"),
    "feedback-unknown-field": ("POST", F, {"json": {"request": {"x": 1}}}, 400, 'no field named "x"'),
    "feedback-tensor-mismatch": ("POST", F, {"json": {"request": {"data": {"tensor": {"shape": [2], "values": [1]}}}}},
                                 400, "cannot read a Feedback message"),
    "feedback-reward-string": ("POST", F, {"json": {"request": GOOD, "reward": "high"}}, 400, "reward"),
    "feedback-form-broken": ("POST", F, form("{bad"), 400, 'form field "json"'),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CORPUS))
def test_malformed_request_is_4xx_with_a_message(good_server: SeldonServer, case: str) -> None:
    method, path, kwargs, status, words = CORPUS[case]
    response = requests.request(method, good_server.url + path, timeout=30, **kwargs)
    assert response.status_code == status, response.text[:500]
    info = response.json()["status"]
    assert info["status"] == 1 and info["reason"]
    assert words in info["info"], info["info"][:500]


def test_server_still_serves_after_the_corpus(good_server: SeldonServer) -> None:
    assert good_server.process.running()
    assert good_server.predict(GOOD).status_code == 200
    assert "Traceback" not in good_server.log()


def test_client_cannot_write_metrics(good_server: SeldonServer) -> None:
    """The wrapper exports a raw response's meta.metrics: the request's must not get there."""
    injected = {"key": "modeldeploy_injected_total", "type": "COUNTER", "value": 1e9, "tags": {"class": "3"}}
    response = good_server.predict({**GOOD, "meta": {"metrics": [injected], "puid": "p1"}})
    assert response.status_code == 200, response.text
    assert response.json()["meta"]["puid"] == "p1"
    garbage = good_server.predict({**GOOD, "meta": {"metrics": [{"x": 1}]}})
    assert garbage.status_code == 200, garbage.text
    assert not [s for s in good_server.metrics() if s[0].startswith("modeldeploy_injected")]


# ----- body size -------------------------------------------------------------------------


def exchange(port: int, head: str, parts: list[bytes] = [], timeout: float = 30) -> tuple[int, dict]:  # noqa: B006
    """Send a request head and body parts on a raw socket; the status and JSON body."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head.encode())
        for part in parts:
            sock.sendall(part)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])


def head(length: int | None = None) -> str:
    size = "Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}"
    return f"POST {P} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n{size}\r\n\r\n"


def test_oversized_body_is_refused_before_it_is_read(good_server: SeldonServer) -> None:
    # 60 MB announced, not a byte sent: the answer can only come from the header.
    status, answer = exchange(good_server.http_port, head(60 * 1024 * 1024))
    assert status == 413
    assert answer["status"]["reason"] == "REQUEST_TOO_LARGE"
    assert f"62914560 bytes is over this server's limit of {LIMIT} bytes" in answer["status"]["info"]
    assert "max_request_bytes" in answer["status"]["info"]


def test_bodies_under_the_limit_are_served(good_server: SeldonServer) -> None:
    padded = json.dumps(GOOD) + " " * (LIMIT - 1000)
    assert good_server.predict_raw(padded).status_code == 200
    chunked = good_server.session.post(good_server.url + P, data=iter([padded.encode()]), headers=JSON, timeout=30)
    assert chunked.status_code == 200, chunked.text


@pytest.fixture(scope="module")
def small_limit(launch: Launcher, artifacts: Path) -> SeldonServer:
    params = {"model_uri": (artifacts / "2.0.0").as_uri(), "max_request_bytes": 4096}
    return launch("small-limit", params).wait_serving()


def test_the_limit_is_a_parameter(small_limit: SeldonServer) -> None:
    assert small_limit.predict_raw(json.dumps(GOOD) + " " * 3000).status_code == 200
    too_large = small_limit.predict_raw(json.dumps(GOOD) + " " * 4000)
    assert too_large.status_code == 413, too_large.text
    assert "limit of 4096 bytes" in too_large.json()["status"]["info"]
    # Form-encoded bodies are bounded the same way (the limit is on bytes, not on JSON).
    assert small_limit.session.post(small_limit.url + P, data={"json": "x" * 5000}, timeout=10).status_code == 413


def test_oversized_chunked_body_is_refused(small_limit: SeldonServer) -> None:
    # No Content-Length: the server reads one byte past the limit (gunicorn reads ahead
    # up to the next chunk header), then answers. A complete body, so that the server
    # has read everything sent when it closes: unread bytes would make the kernel reset
    # the connection under the answer.
    data = b" " * 4097
    status, answer = exchange(small_limit.http_port, head(), [b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data)])
    assert status == 413 and "more than 4096 bytes" in answer["status"]["info"]


# ----- one slow client -------------------------------------------------------------------


def test_a_slow_client_does_not_stall_the_others(good_server: SeldonServer) -> None:
    """One client sends half a body and stalls: it holds one worker, the other workers
    keep serving, and the slow request itself completes once its body arrives."""
    payload = json.dumps(ndarray([ROW] * 200)).encode()
    half = len(payload) // 2
    with socket.create_connection(("127.0.0.1", good_server.http_port), timeout=30) as slow:
        slow.sendall(head(len(payload)).encode() + payload[:half])
        for _ in range(20):
            quick = requests.post(good_server.url + P, json=GOOD, timeout=10)
            assert quick.status_code == 200, quick.text
        # The slow request is still in flight: no answer while half its body is missing.
        slow.settimeout(0.2)
        with pytest.raises(TimeoutError):
            slow.recv(1)
        slow.settimeout(30)
        slow.sendall(payload[half:])
        answer = b""
        while chunk := slow.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
