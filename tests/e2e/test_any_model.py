"""Models other than modeldeploy's own server, each wrapped in the output monitor by the
operator and walked by the stand-in's executor: a scikit-learn regressor on a
prepackaged-style server (SKLEARN_SERVER, see modelserver.sklearn_server for why a
stand-in), judged on its output bins, and a user's own image given as a Seldon graph,
judged on the monitor's class counts. A bad candidate of each is rolled back, a healthy
one promoted."""

from __future__ import annotations

from .scenario_run import run


def test_a_drifted_regressor_is_rolled_back_on_its_output_bins(sandbox) -> None:
    r = run(sandbox, "regressor-drifted")
    assert r.result == "RolledBack", r.reason
    assert "outputs Fail" in r.reason and "[200,+inf)" in r.reason, r.reason
    assert r.final_traffic == {"1.0.0": 100}
    assert r.load.get("http_200", 0) > 100 and not {k for k in r.load if k.startswith("http_5")}


def test_a_healthy_regressor_is_promoted(sandbox) -> None:
    r = run(sandbox, "regressor-healthy")
    assert r.result == "Promoted", r.reason
    assert r.final_traffic == {"1.1.0": 100}


def test_a_skewed_custom_image_is_rolled_back_on_the_monitors_class_counts(sandbox) -> None:
    r = run(sandbox, "custom-skewed")
    assert r.result == "RolledBack", r.reason
    assert "outputs Fail" in r.reason, r.reason
    assert r.final_traffic == {"1.0.0": 100} and r.max_weight == 20


def test_a_healthy_custom_image_is_promoted(sandbox) -> None:
    r = run(sandbox, "custom-healthy")
    assert r.result == "Promoted", r.reason
    assert r.final_traffic == {"2.0.0": 100}
