"""Model artifacts: a directory holding TorchScript weights and a `model.json` card.

The card is the contract between `train` and the server: what the model is (name,
version, labels), what it eats (input shape and value range: the feature encoding
ships with the model), which bytes it is (sha256 of the weights) and how it was made.
Everything here fails with `ArtifactError`, whose message is shown verbatim on the
server's `/health/status`, so each message names the file and the mismatch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import torch

CARD_FILE = "model.json"
WEIGHTS_FILE = "model.pt"
SCHEMA_VERSION = 1
# Where Seldon's storage initializer puts a remote modelUri inside the pod.
SELDON_MODELS_DIR = "/mnt/models"


class ArtifactError(Exception):
    """The artifact cannot be served; the message says why, for a person."""


@dataclass(frozen=True)
class ModelCard:
    name: str
    version: str
    labels: tuple[str, ...]
    input_shape: tuple[int, ...]
    input_range: tuple[float, float] | None  # None: any finite value
    sha256: str
    weights: str = WEIGHTS_FILE
    description: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    faults: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "framework": "torchscript",
            "weights": self.weights,
            "sha256": self.sha256,
            "labels": list(self.labels),
            "input_shape": list(self.input_shape),
            "input_range": list(self.input_range) if self.input_range else None,
            "output": "logits; the server returns softmax probabilities, one column per label",
            "training": self.training,
            "faults": self.faults,
        }


@dataclass(frozen=True)
class LoadedModel:
    card: ModelCard
    module: torch.jit.ScriptModule
    directory: Path


def resolve_uri(uri: str) -> Path:
    """A local directory from a path or `file://` URI.

    Remote schemes are refused on purpose: in a cluster, Seldon's storage initializer
    downloads them before the server starts, so the server only ever reads local files.
    """
    if not uri:
        raise ArtifactError("no model_uri parameter: pass the artifact directory as a path or file:// URI")
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        if parsed.scheme == "file" and parsed.netloc not in ("", "localhost"):
            raise ArtifactError(f"model_uri {uri!r}: file:// URIs must be local (file:///path)")
        path = Path(unquote(parsed.path) if parsed.scheme == "file" else uri)
        return path
    raise ArtifactError(
        f"model_uri {uri!r}: scheme {parsed.scheme}:// is not fetched by the server; "
        f"set it as the graph's modelUri so Seldon's storage initializer downloads it "
        f"to {SELDON_MODELS_DIR}, and pass model_uri={SELDON_MODELS_DIR}"
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _require(card: dict[str, Any], key: str, kind: type | tuple[type, ...], where: Path) -> Any:
    if key not in card:
        raise ArtifactError(f"{where}: missing field {key!r}")
    value = card[key]
    # bool is an int in Python; a shape of [true] is still wrong.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ArtifactError(f"{where}: field {key!r} has the wrong type ({type(value).__name__})")
    return value


def parse_card(data: Any, where: Path) -> ModelCard:
    """Validate the card's structure; the weights are checked by `load_artifact`."""
    if not isinstance(data, dict):
        raise ArtifactError(f"{where}: expected a JSON object")
    schema = data.get("schema", SCHEMA_VERSION)
    if schema != SCHEMA_VERSION:
        raise ArtifactError(f"{where}: schema {schema!r} is not supported (expected {SCHEMA_VERSION})")
    name = _require(data, "name", str, where)
    version = _require(data, "version", str, where)
    sha = _require(data, "sha256", str, where).lower()
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise ArtifactError(f"{where}: sha256 must be 64 hex digits")
    labels = _require(data, "labels", list, where)
    if not labels or not all(isinstance(x, str) and x for x in labels):
        raise ArtifactError(f"{where}: labels must be a non-empty list of non-empty strings")
    if len(set(labels)) != len(labels):
        raise ArtifactError(f"{where}: labels must be unique")
    shape = _require(data, "input_shape", list, where)
    if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise ArtifactError(f"{where}: input_shape must be a list of positive integers, got {shape!r}")
    bounds = data.get("input_range")
    if bounds is not None and not (
        isinstance(bounds, list)
        and len(bounds) == 2
        and all(isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b) for b in bounds)
        and bounds[0] <= bounds[1]
    ):
        raise ArtifactError(f"{where}: input_range must be [low, high] with finite low <= high, got {bounds!r}")
    weights = data.get("weights", WEIGHTS_FILE)
    # The weights must sit inside the artifact directory, whatever the card says.
    if not isinstance(weights, str) or Path(weights).name != weights or weights in ("", ".", ".."):
        raise ArtifactError(f"{where}: weights must be a plain file name in the artifact directory")
    faults = data.get("faults") or {}
    if not isinstance(faults, dict):
        raise ArtifactError(f"{where}: faults must be an object")
    return ModelCard(
        name=name,
        version=version,
        labels=tuple(labels),
        input_shape=tuple(shape),
        input_range=(float(bounds[0]), float(bounds[1])) if bounds is not None else None,
        sha256=sha,
        weights=weights,
        description=str(data.get("description", "")),
        training=dict(data.get("training") or {}),
        faults=dict(faults),
    )


def read_card(directory: Path) -> ModelCard:
    if not directory.exists():
        raise ArtifactError(f"artifact directory {directory} does not exist")
    if not directory.is_dir():
        raise ArtifactError(f"artifact path {directory} is not a directory")
    path = directory / CARD_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ArtifactError(f"{path} is missing (every artifact needs a {CARD_FILE} card)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{path} is unreadable: {e}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ArtifactError(f"{path} is not valid JSON: {e}") from None
    return parse_card(data, path)


def _probe(module: torch.jit.ScriptModule, card: ModelCard, weights: Path) -> None:
    """Run one zero image through the model: catches shape and label-count drift now,
    not on the first user request."""
    try:
        with torch.inference_mode():
            out = module(torch.zeros((1, *card.input_shape), dtype=torch.float32))
    except Exception as e:  # noqa: BLE001 - TorchScript raises plain RuntimeErrors
        first = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise ArtifactError(
            f"input shape mismatch: {weights} does not accept a batch of input_shape "
            f"{list(card.input_shape)} declared in {CARD_FILE} ({first})"
        ) from None
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != 1:
        shape = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ArtifactError(f"{weights} returns {shape} for one image; expected [1, number of labels]")
    if out.shape[1] != len(card.labels):
        raise ArtifactError(
            f"label count mismatch: {CARD_FILE} lists {len(card.labels)} labels but "
            f"{weights} outputs {out.shape[1]} scores"
        )


def load_artifact(uri: str, expected_sha256: str = "", expected_version: str = "") -> LoadedModel:
    """Load and verify an artifact; raises `ArtifactError` naming the first problem.

    `expected_sha256` / `expected_version` are pins from the deployment (Seldon
    parameters), checked on top of the card's own checksum: they catch a card that was
    replaced together with its weights.
    """
    directory = resolve_uri(uri)
    card = read_card(directory)
    weights = directory / card.weights
    if not weights.is_file():
        raise ArtifactError(f"weights file {weights} named in {CARD_FILE} is missing")
    try:
        actual = sha256_file(weights)
    except OSError as e:
        raise ArtifactError(f"weights file {weights} is unreadable: {e}") from None
    if actual != card.sha256:
        raise ArtifactError(
            f"checksum mismatch: sha256 of {weights} is {actual}, {CARD_FILE} says {card.sha256}"
        )
    if expected_sha256 and actual != expected_sha256.lower():
        raise ArtifactError(
            f"checksum mismatch: sha256 of {weights} is {actual}, the deployment pins {expected_sha256}"
        )
    if expected_version and card.version != expected_version:
        raise ArtifactError(
            f"version mismatch: {CARD_FILE} says {card.version!r}, the deployment expects {expected_version!r}"
        )
    try:
        module = torch.jit.load(str(weights), map_location="cpu")
    except Exception as e:  # noqa: BLE001 - torch raises several unrelated types here
        raise ArtifactError(f"{weights} is not a loadable TorchScript archive: {e}") from None
    module.eval()
    _probe(module, card, weights)
    return LoadedModel(card=card, module=module, directory=directory)


def write_artifact(directory: Path, module: torch.jit.ScriptModule, card: ModelCard) -> ModelCard:
    """Save weights, then the card with their checksum (the card is written last, so a
    half-written artifact has no card and is refused)."""
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / card.weights
    torch.jit.save(module, str(weights))
    card = dataclasses.replace(card, sha256=sha256_file(weights))
    tmp = directory / f".{CARD_FILE}.tmp"
    tmp.write_text(json.dumps(card.to_json(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, directory / CARD_FILE)
    return card
