"""scikit-learn artifacts for the sandbox, saved as `model.joblib` the way a prepackaged
SKLEARN_SERVER expects them, trained on data sets that ship with scikit-learn.

    python -m modelserver.sklearn_models --out DIR

Directories `<name>-<version>`, each with `model.joblib` and a `model.json` naming it:

* diabetes (a regressor, served with `method: predict`): 1.0.0 (ridge regression), 1.1.0
  (a little more regularisation: a healthy candidate, nearly the same outputs) and
  `drifted` (trained on targets scaled up by half: it serves, fast and without errors, but
  predicts systematically higher, the kind of candidate only the output distribution
  catches);
* iris (a classifier, served with the SKLEARN_SERVER's default `predict_proba`): 1.0.0
  (logistic regression), 1.1.0 (weaker regularisation: a healthy candidate) and `skewed`
  (a class weight that all but removes virginica: as accurate on the other two species, it
  calls most virginica versicolor, which only the predicted-class counts show).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression, Ridge

from modelserver.sklearn_server import MODEL_FILE


def _ridge(alpha: float, scale: float) -> Callable[[], Any]:
    def fit() -> Any:
        x, y = load_diabetes(return_X_y=True)
        return Ridge(alpha=alpha).fit(x, np.asarray(y) * scale)

    return fit


def _logistic(c: float, class_weight: dict[int, float] | None = None) -> Callable[[], Any]:
    def fit() -> Any:
        x, y = load_iris(return_X_y=True)
        return LogisticRegression(C=c, class_weight=class_weight, max_iter=1000).fit(x, y)

    return fit


#: (model name, version) -> how to train it.
MODELS: dict[tuple[str, str], Callable[[], Any]] = {
    ("diabetes", "1.0.0"): _ridge(0.01, 1.0),
    ("diabetes", "1.1.0"): _ridge(0.02, 1.0),
    ("diabetes", "drifted"): _ridge(0.01, 1.5),
    ("iris", "1.0.0"): _logistic(1.0),
    ("iris", "1.1.0"): _logistic(2.0),
    ("iris", "skewed"): _logistic(1.0, {0: 1.0, 1: 1.0, 2: 0.01}),
}


def train(out: Path) -> dict[str, Path]:
    """Every model of `MODELS`, by directory name (`diabetes-1.0.0`, ...)."""
    paths = {}
    for (name, version), fit in MODELS.items():
        where = out / f"{name}-{version}"
        where.mkdir(parents=True, exist_ok=True)
        joblib.dump(fit(), where / MODEL_FILE)
        # Not read by the server (a SKLEARN_SERVER reads model.joblib only): the sandbox's
        # record of which version the directory holds.
        (where / "model.json").write_text(json.dumps({"name": name, "version": version}))
        paths[where.name] = where
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    for name, path in train(parser.parse_args().out).items():
        print(name, path)


if __name__ == "__main__":
    main()
