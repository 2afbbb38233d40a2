"""Model artifacts for the sandbox, trained once by the model server's `train` command
(in its own virtualenv) and cached outside the repo, keyed on the training code."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VERSIONS = ("1.0.0", "2.0.0", "slow", "skewed", "corrupt")
# Twins: another artifact's very weights under another version. 1.0.1 makes an A/A test;
# the others give versions whose names stress Seldon's naming (hashed Deployment names,
# predictor names that share a prefix).
# scikit-learn models (modelserver.sklearn_models), served as a prepackaged SKLEARN_SERVER
# serves them: a regressor and a classifier.
SKLEARN_ARTIFACTS = ("diabetes-1.0.0", "diabetes-1.1.0", "diabetes-drifted", "iris-1.0.0", "iris-1.1.0", "iris-skewed")
TWINS = {"1.0.1": "1.0.0", "2": "1.0.0", "2.0": "2.0.0", "2024.05.01": "1.0.0", "2024.06.01-rc1": "2.0.0"}


def model_bin() -> Path:
    """The model server virtualenv's bin/ (MODEL_VENV, exported by the Makefile)."""
    venv = os.environ.get("MODEL_VENV")
    if not venv:
        raise RuntimeError("MODEL_VENV is not set: run through `make` (or export MODEL_VENV=$(hack/setup.sh env ...))")
    return Path(venv) / "bin"


def cache_dir() -> Path:
    return Path(os.environ.get("MODELDEPLOY_CACHE", Path.home() / ".cache" / "modeldeploy"))


def ensure_artifacts(seed: int = 0) -> Path:
    """Directory with one sub-directory per artifact (VERSIONS and TWINS)."""
    sources = sorted((REPO / "model_server" / "modelserver").glob("*.py"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:12]
    out = cache_dir() / "artifacts" / f"{digest}-seed{seed}"
    if not all((out / v / "model.json").exists() for v in VERSIONS):
        out.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(model_bin() / "python"), "-m", "modelserver.train", "--out", str(out), "--seed", str(seed)],
                       check=True, capture_output=True, text=True)
    if not all((out / name / "model.joblib").exists() for name in SKLEARN_ARTIFACTS):
        subprocess.run([str(model_bin() / "python"), "-m", "modelserver.sklearn_models", "--out", str(out)],
                       check=True, capture_output=True, text=True)
    for twin, source in TWINS.items():
        if not (out / twin / "model.json").exists():
            shutil.copytree(out / source, out / twin, dirs_exist_ok=True)
            card = json.loads((out / twin / "model.json").read_text())
            card["version"] = twin
            (out / twin / "model.json").write_text(json.dumps(card, indent=2))
    return out


def card_version(artifacts: Path, name: str) -> str:
    return json.loads((artifacts / name / "model.json").read_text())["version"]
