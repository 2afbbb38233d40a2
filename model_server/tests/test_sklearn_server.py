"""The SKLEARN_SERVER stand-in on the real wrapper: loads model.joblib from model_uri,
answers with the configured method (predict_proba by default), stays unready (with the
reason) when it cannot; the sandbox's regressors and classifiers behave as their
docstrings (modelserver.sklearn_models) say."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from seldon_server import Launcher, SeldonServer, ndarray, stop_all
from sklearn.datasets import load_diabetes, load_iris

from modelserver import sklearn_models

INTERFACE = "modelserver.sklearn_server.SKLearnServer"


@pytest.fixture(scope="module")
def servers(launch: Launcher, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, SeldonServer]]:
    out = tmp_path_factory.mktemp("sklearn")
    paths = sklearn_models.train(out)
    started = {
        "predict": launch("sk-predict", {"model_uri": f"file://{paths['diabetes-1.0.0']}", "method": "predict"},
                          interface=INTERFACE),
        "drifted": launch("sk-drifted", {"model_uri": f"file://{paths['diabetes-drifted']}", "method": "predict"},
                          interface=INTERFACE),
        # The SKLEARN_SERVER's default method: predict_proba.
        "iris": launch("sk-iris", {"model_uri": f"file://{paths['iris-1.0.0']}"}, interface=INTERFACE),
        "iris-skewed": launch("sk-iris-skewed", {"model_uri": f"file://{paths['iris-skewed']}"}, interface=INTERFACE),
        "missing": launch("sk-missing", {"model_uri": str(Path(out) / "nowhere")}, interface=INTERFACE),
    }
    for s in started.values():
        s.wait_serving()
    yield started
    stop_all(list(started.values()))


def scores(server: SeldonServer, rows: np.ndarray) -> np.ndarray:
    r = server.predict(ndarray(rows.tolist()))
    assert r.status_code == 200, r.text
    return np.asarray(r.json()["data"]["ndarray"])


def test_it_serves_the_regressors_scores_and_the_drifted_one_is_higher(servers: dict[str, SeldonServer]) -> None:
    x, y = load_diabetes(return_X_y=True)
    good, drifted = scores(servers["predict"], x[:50]), scores(servers["drifted"], x[:50])
    assert good.shape == (50,) and abs(np.mean(good) - np.mean(y[:50])) < 30
    assert np.mean(drifted) > 1.3 * np.mean(good)


def test_it_serves_a_classifiers_probabilities_and_the_skewed_one_drops_a_class(
        servers: dict[str, SeldonServer]) -> None:
    x, y = load_iris(return_X_y=True)
    good, skewed = scores(servers["iris"], x), scores(servers["iris-skewed"], x)
    assert good.shape == (150, 3) and np.allclose(good.sum(axis=1), 1.0)
    assert np.mean(good.argmax(axis=1) == y) > 0.95
    predicted = np.bincount(skewed.argmax(axis=1), minlength=3)
    assert predicted[2] < 15 and predicted[1] > 80, predicted  # virginica called versicolor


def test_a_missing_model_is_unready_with_the_reason(servers: dict[str, SeldonServer]) -> None:
    status = servers["missing"].get("/health/status")
    assert status.status_code == 503 and "model.joblib" in status.text
    assert servers["predict"].get("/health/status").status_code == 200
