"""The train command: artifacts, cards, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from modelserver import train
from modelserver.artifact import ArtifactError, load_artifact, sha256_file

ARTIFACTS = ("1.0.0", "2.0.0", "slow", "skewed", "corrupt")


def test_writes_every_artifact_and_reports_it(trained: tuple[Path, str]) -> None:
    out, stdout = trained
    for name in ARTIFACTS:
        assert (out / name / "model.json").is_file() and (out / name / "model.pt").is_file()
        assert name in stdout
    assert "test acc" in stdout and "bytes" in stdout


def test_cards(artifacts: Path) -> None:
    for name in ("1.0.0", "2.0.0", "slow", "skewed"):
        card = json.loads((artifacts / name / "model.json").read_text())
        assert card["name"] == "digits" and card["labels"] == [str(d) for d in range(10)]
        assert card["input_shape"] == [8, 8] and card["input_range"] == [0.0, 16.0]
        assert card["sha256"] == sha256_file(artifacts / name / "model.pt")
        assert {"dataset", "split", "test_accuracy", "epochs"} <= set(card["training"])
        assert load_artifact(str(artifacts / name)).card.version == card["version"]
    assert json.loads((artifacts / "1.0.0" / "model.json").read_text())["faults"] == {}
    assert json.loads((artifacts / "slow" / "model.json").read_text())["faults"] == {"latency_ms": 300.0}


def test_corrupt_fails_its_checksum(artifacts: Path) -> None:
    try:
        load_artifact((artifacts / "corrupt").as_uri())
    except ArtifactError as e:
        assert "checksum mismatch" in str(e)
    else:
        raise AssertionError("the corrupt artifact loaded")


def test_same_seed_same_weights() -> None:
    """TorchScript archives carry a random serialization id, so the bytes (and sha256)
    differ per run; the weights themselves are identical."""
    X, _, y, _ = train.load_data(3)
    torch.set_num_threads(1)
    a = train.fit(train.BASELINE, X, y, seed=3).state_dict()
    b = train.fit(train.BASELINE, X, y, seed=3).state_dict()
    c = train.fit(train.BASELINE, X, y, seed=4).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert np.isclose(float(a["out.bias"].sum()), float(b["out.bias"].sum()))
