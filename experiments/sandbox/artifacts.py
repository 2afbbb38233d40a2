"""Model artifacts for the sandbox, trained once by the model server's `train` command
(in its own virtualenv) and cached outside the repo, keyed on the training code."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VERSIONS = ("1.0.0", "2.0.0", "slow", "skewed", "corrupt")


def model_bin() -> Path:
    """The model server virtualenv's bin/ (MODEL_VENV, exported by the Makefile)."""
    venv = os.environ.get("MODEL_VENV")
    if not venv:
        raise RuntimeError("MODEL_VENV is not set: run through `make` (or export MODEL_VENV=$(hack/setup.sh env ...))")
    return Path(venv) / "bin"


def cache_dir() -> Path:
    return Path(os.environ.get("MODELDEPLOY_CACHE", Path.home() / ".cache" / "modeldeploy"))


def ensure_artifacts(seed: int = 0) -> Path:
    """Directory with one sub-directory per artifact (1.0.0, 2.0.0, slow, skewed, corrupt)."""
    sources = sorted((REPO / "model_server" / "modelserver").glob("*.py"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:12]
    out = cache_dir() / "artifacts" / f"{digest}-seed{seed}"
    if all((out / v / "model.json").exists() for v in VERSIONS):
        return out
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(model_bin() / "python"), "-m", "modelserver.train", "--out", str(out), "--seed", str(seed)],
                   check=True, capture_output=True, text=True)
    return out


def card_version(artifacts: Path, name: str) -> str:
    import json

    return json.loads((artifacts / name / "model.json").read_text())["version"]
