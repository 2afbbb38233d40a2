"""Regression artifacts for the sandbox: scikit-learn models on its bundled diabetes data
set, saved as `model.joblib` the way a SKLEARN_SERVER expects them.

    python -m modelserver.regression --out DIR

Directories diabetes-<version>, versions: 1.0.0 (ridge regression), 1.1.0 (the same with a little more regularisation:
a healthy candidate, outputs nearly the same) and `drifted` (trained on targets scaled
up by half: it serves, fast and without errors, but predicts systematically higher, the
kind of candidate only the output distribution catches).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import joblib
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

from modelserver.sklearn_server import MODEL_FILE

#: Bin edges of the disease-progression score (the data set's targets span 25 to 346).
BINS = (100.0, 150.0, 200.0)
VERSIONS = {"1.0.0": (0.01, 1.0), "1.1.0": (0.02, 1.0), "drifted": (0.01, 1.5)}


def train(out: Path) -> dict[str, Path]:
    x, y = load_diabetes(return_X_y=True)
    paths = {}
    for version, (alpha, scale) in VERSIONS.items():
        model = Ridge(alpha=alpha).fit(x, np.asarray(y) * scale)
        where = out / f"diabetes-{version}"
        where.mkdir(parents=True, exist_ok=True)
        joblib.dump(model, where / MODEL_FILE)
        # Not read by the server (a SKLEARN_SERVER reads model.joblib only): the sandbox's
        # record of which version the directory holds.
        (where / "model.json").write_text(json.dumps({"name": "diabetes", "version": version}))
        paths[version] = where
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    for version, path in train(parser.parse_args().out).items():
        print(version, path)


if __name__ == "__main__":
    main()
