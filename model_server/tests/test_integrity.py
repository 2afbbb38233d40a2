"""A broken artifact or deployment never becomes ready, says why, and does not crash.

One real server per case, all started at once (they spend their start-up importing
torch, so starting them together keeps this module to a few seconds of wall time).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from seldon_server import Launcher, SeldonServer, ndarray, stop_all


def edit_card(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(directory: Path) -> None:
        card = json.loads((directory / "model.json").read_text())
        change(card)
        (directory / "model.json").write_text(json.dumps(card))

    return apply


def garbage_weights(directory: Path) -> None:
    """Bytes that match the card's checksum but are no TorchScript archive."""
    data = b"definitely not a zip archive"
    (directory / "model.pt").write_bytes(data)
    edit_card(lambda c: c.update(sha256=hashlib.sha256(data).hexdigest()))(directory)


def card_is_directory(directory: Path) -> None:
    (directory / "model.json").unlink()
    (directory / "model.json").mkdir()


# name: (how to break a copy of 2.0.0 (or None: use it as is), parameters besides
#        model_uri (None: leave model_uri out), words expected in the health message)
CASES: dict[str, tuple[Callable[[Path], None] | None, dict[str, Any] | None, str]] = {
    "checksum-mismatch": (None, {"_artifact": "corrupt"}, "checksum mismatch: sha256 of"),
    "label-count": (edit_card(lambda c: c.update(labels=c["labels"][:9])), {},
                    "label count mismatch: model.json lists 9 labels but"),
    "input-shape": (edit_card(lambda c: c.update(input_shape=[32])), {}, "input shape mismatch"),
    "missing-card": (lambda d: (d / "model.json").unlink(), {}, "model.json is missing"),
    "missing-weights": (lambda d: (d / "model.pt").unlink(), {}, "is missing"),
    "invalid-card": (lambda d: (d / "model.json").write_text("{not json"), {}, "is not valid JSON"),
    "unreadable-card": (card_is_directory, {}, "is unreadable"),
    "card-without-labels": (edit_card(lambda c: c.pop("labels")), {}, "missing field 'labels'"),
    "unloadable-weights": (garbage_weights, {}, "is not a loadable TorchScript archive"),
    "bad-fault-config": (edit_card(lambda c: c.update(faults={"error_rate": 2})), {}, "error_rate=2.0 is out of range"),
    "missing-directory": (lambda d: shutil.rmtree(d), {}, "does not exist"),
    "remote-uri": (None, {"model_uri": "s3://models/digits/2.0.0"}, "storage initializer"),
    "no-model-uri": (None, None, "no model_uri parameter"),
    "sha256-pin": (None, {"sha256": "0" * 64}, "the deployment pins"),
    "version-pin": (None, {"version": "3.0.0"}, "version mismatch"),
    "unknown-parameter": (None, {"model_url": "/x"}, "unknown Seldon parameter(s) model_url"),
    "tiny-request-limit": (None, {"max_request_bytes": 10}, "max_request_bytes=10 is below 1024 bytes"),
}  # fmt: skip


@pytest.fixture(scope="module")
def broken(
    launch: Launcher, artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, SeldonServer]]:
    root = tmp_path_factory.mktemp("broken")
    servers = {}
    for name, (breaker, params, _) in CASES.items():
        if params is None:
            servers[name] = launch(name, {})
            continue
        params = dict(params)
        source = artifacts / params.pop("_artifact", "2.0.0")
        if breaker is None:
            directory = source
        else:
            directory = root / name
            shutil.copytree(source, directory)
            breaker(directory)
        servers[name] = launch(name, {"model_uri": directory.as_uri(), **params})
    for server in servers.values():
        server.wait_serving(timeout=120)
    yield servers
    stop_all(list(servers.values()))  # now, not at session end: they hold memory


@pytest.mark.parametrize("case", list(CASES))
def test_never_ready_and_says_why(broken: dict[str, SeldonServer], case: str) -> None:
    server = broken[case]
    status = server.get("/health/status")
    assert status.status_code == 503, status.text
    info = status.json()["status"]
    assert info["reason"] == "MODEL_NOT_READY"
    assert info["info"].startswith("model not ready: ")
    assert CASES[case][2] in info["info"]
    # Liveness stays green: restarting would not fix an artifact; readiness keeps it out.
    assert server.get("/health/ping").status_code == 200
    prediction = server.predict(ndarray([[0.0] * 64]))
    assert prediction.status_code == 503 and CASES[case][2] in prediction.json()["status"]["info"]
    feedback = server.feedback({"request": ndarray([[0.0] * 64]), "truth": ndarray([0])})
    assert feedback.status_code == 503
    assert server.process.running(), server.log()
    # The reason is in the log too, for `kubectl logs`.
    assert "model NOT ready" in server.log()
