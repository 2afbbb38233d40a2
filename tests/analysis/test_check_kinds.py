"""The check kinds are registered once, in `analysis.kinds.KINDS`: the CRD offers exactly
those (in its schema and its exactly-one rule), and both analysis methods run every one
of them (a kind whose `window` or `sequential` cannot run fails here, not in a rollout)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from modeldeploy.analysis import Target, analyse, parse_analysis
from modeldeploy.analysis.kinds import KINDS
from modeldeploy.analysis.sequential_analyse import Evidence
from modeldeploy.providers import NoData, Sample
from modeldeploy.verdicts import SEQUENTIAL, Outcome

CRD = Path(__file__).resolve().parents[2] / "crds" / "modeldeploy.io_modeldeployments.yaml"
#: One check of each kind, as a user writes it.
EXAMPLES = {"latency": {}, "errorRate": {}, "outputDistribution": {}, "query": "vector(1)"}


def metric_item() -> dict:
    crd = yaml.safe_load(CRD.read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return spec["properties"]["analysis"]["properties"]["metrics"]["items"]


def test_the_crd_offers_exactly_the_parsers_check_kinds() -> None:
    item = metric_item()
    assert set(item["properties"]) - {"name", "min", "max"} == set(KINDS)
    (one_of,) = [v for v in item["x-kubernetes-validations"] if "exactly one of" in v["message"]]
    assert re.findall(r"has\(self\.(\w+)\)", one_of["rule"]) == list(KINDS)
    assert set(EXAMPLES) == set(KINDS), "add an example of the new kind above"


class NoSeries:
    """A provider whose every query matches nothing (no traffic yet)."""

    def query(self, promql: str, at: float | None = None) -> list[Sample]:
        raise NoData("no series", promql)

    def is_online(self) -> bool:
        return True


@pytest.mark.parametrize("method", [SEQUENTIAL, "window"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_both_methods_run_every_kind(kind: str, method: str) -> None:
    item = {"name": "m", kind: EXAMPLES[kind], **({"min": 0} if kind == "query" else {})}
    spec = parse_analysis({"method": method, "metrics": [item]})
    evidence = Evidence(since_rollout_s=600, since_step_s=60, share=0.1) if method == SEQUENTIAL else None
    result = analyse(spec, Target("models", "digits", "v1", "v2"), NoSeries(), at=1.7e9, evidence=evidence)
    assert [(c.name, c.outcome) for c in result.checks] == [("m", Outcome.INCONCLUSIVE)], result.checks
