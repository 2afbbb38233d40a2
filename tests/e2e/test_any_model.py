"""Models other than modeldeploy's own server, each wrapped in the output monitor by the
operator and walked by the stand-in's executor: a scikit-learn regressor on a
prepackaged-style server (SKLEARN_SERVER, see modelserver.sklearn_server for why a
stand-in), judged on output bins fixed from the stable version's outputs; a scikit-learn
classifier on the same server as it is (predict_proba); and a user's own image given as a
Seldon graph. Each kind promotes a healthy candidate and rolls back a bad one.

`make test` runs the drifted regressor, the one scenario that crosses every part of this
(prepackaged server, monitor node, bins fixed from status, a rollback on outputs); the
other five run with `make soak` (pytest marker `soak`), which CI also runs. Our own
server's healthy and skewed pair is in test_scenarios.py."""

from __future__ import annotations

import pytest

from .scenario_run import outputs_by_class, run


def test_a_drifted_regressor_is_rolled_back_on_bins_fixed_from_the_stable_outputs(sandbox) -> None:
    r = run(sandbox, "regressor-drifted")
    assert r.result == "RolledBack", r.reason
    assert "outputs Fail" in r.reason and ",+inf)" in r.reason, r.reason
    assert r.final_traffic == {"1.0.0": 100}
    assert r.load.get("http_200", 0) > 100 and not {k for k in r.load if k.startswith("http_5")}
    bins = r.final_status["outputBins"]
    # Deciles of the stable version's outputs from before the rollout (the scenario gives
    # it 8 s of traffic first), on the monitor's fine grid.
    assert bins["version"] == "1.0.0" and bins["outputs"] >= 200 and len(bins["edges"]) >= 5, bins
    assert bins["until"] == r.final_status["rolloutStartedAt"], bins
    assert 50 < bins["edges"][0] < bins["edges"][-1] < 300, bins


@pytest.mark.soak
def test_a_healthy_regressor_is_promoted(sandbox) -> None:
    r = run(sandbox, "regressor-healthy")
    assert r.result == "Promoted", (r.reason, outputs_by_class(sandbox, r))
    assert r.final_traffic == {"1.1.0": 100}
    assert r.final_status["outputBins"]["version"] == "1.0.0"


@pytest.mark.soak
def test_a_skewed_prepackaged_classifier_is_rolled_back_on_its_class_counts(sandbox) -> None:
    r = run(sandbox, "prepackaged-skewed")
    assert r.result == "RolledBack", r.reason
    # predict_proba's columns, named by the wrapper: t:1 versicolor, t:2 virginica.
    assert "outputs Fail" in r.reason and ("'t:2'" in r.reason or "'t:1'" in r.reason), r.reason
    assert r.final_traffic == {"1.0.0": 100}


@pytest.mark.soak
def test_a_healthy_prepackaged_classifier_is_promoted(sandbox) -> None:
    r = run(sandbox, "prepackaged-healthy")
    assert r.result == "Promoted", (r.reason, outputs_by_class(sandbox, r))
    assert r.final_traffic == {"1.1.0": 100}


@pytest.mark.soak
def test_a_skewed_custom_image_is_rolled_back_on_the_monitors_class_counts(sandbox) -> None:
    r = run(sandbox, "custom-skewed")
    assert r.result == "RolledBack", r.reason
    assert "outputs Fail" in r.reason, r.reason
    assert r.final_traffic == {"1.0.0": 100} and r.max_weight == 20


@pytest.mark.soak
def test_a_healthy_custom_image_is_promoted(sandbox) -> None:
    r = run(sandbox, "custom-healthy")
    assert r.result == "Promoted", (r.reason, outputs_by_class(sandbox, r))
    assert r.final_traffic == {"2.0.0": 100}
