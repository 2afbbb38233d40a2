"""The router seam: the registry hands out routers that satisfy the protocol, and the
core never needs to know which one it got."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from modeldeploy import rollout, routers, routing
from modeldeploy.routers import Router, seldon_v1
from modeldeploy.spec import ModelSpec, parse

CORE = ("state.py", "rollout.py", "evidence.py", "transitions.py", "schedule.py", "routing.py", "spec.py", "schema.py")
#: The core modules that word the rollout's events.
WORDING = ("rollout.py", "evidence.py", "transitions.py")
PACKAGE = Path(routers.__file__).parent.parent


def test_every_registered_router_renders_observes_and_names_its_resource() -> None:
    model = ModelSpec(name="digits", version="1.0.0", uri="s3://b/1")
    preds = [routing.Predictor(routing.predictor_name("1.0.0"), "1.0.0", model, 100)]
    owner = {"apiVersion": "modeldeploy.io/v1alpha1", "kind": "ModelDeployment", "metadata": {"name": "d", "uid": "u"}}
    for name in routers.ROUTERS:
        router: Router = routers.get(name)
        body = router.render("d", "ns", owner, preds)
        assert body["apiVersion"] == router.resource.api_version and body["kind"] == router.resource.kind
        assert router.in_sync(body, body) and not router.in_sync(None, body)
        assert router.observe(None) == routing.Observation(exists=False, kind=router.resource.kind)
        assert not router.observe(body).is_ready(preds[0].name)  # no status yet: nothing is ready
        assert router.series.predictor_label


def test_the_default_router_is_seldon_v1_and_an_unknown_one_names_the_known() -> None:
    assert routers.from_env({}).resource == seldon_v1.RESOURCE
    assert routers.from_env({}).resource.plural == "seldondeployments"
    with pytest.raises(ValueError, match="MODELDEPLOY_ROUTER: unknown router 'kserve'; known: seldon-v1"):
        routers.from_env({"MODELDEPLOY_ROUTER": "kserve"})


@pytest.mark.parametrize("module", CORE)
def test_the_core_imports_no_router(module: str) -> None:
    tree = ast.parse((PACKAGE / module).read_text())
    imported = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert not {m for m in imported if "routers" in m or "seldon" in m}, imported


@pytest.mark.parametrize("module", WORDING)
def test_the_cores_messages_name_no_router(module: str) -> None:
    """Event and status messages name the routed object by `Observation.kind` (the
    router's resource kind), so a second router's rollouts do not speak of Seldon."""
    tree = ast.parse((PACKAGE / module).read_text())
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef)) and n.body
                  and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    words = [n.value for n in ast.walk(tree)
             if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]
    assert words and not [w for w in words if "seldon" in w.lower()]


def test_a_rollout_speaks_of_the_routers_kind() -> None:
    from .rollout_sim import Sim, make_spec

    sim = Sim(make_spec())
    sim.to_stable()
    sim.bump("2.0.0")
    observed = sim.observation()
    kind = dataclasses.replace(observed.routing, kind="InferenceService")
    decision = rollout.step(parse(sim.spec), rollout.Status.from_dict(sim.status),
                            dataclasses.replace(observed, routing=kind), sim.now)
    assert "until the InferenceService reports it ready" in decision.status.message
