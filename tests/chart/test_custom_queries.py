"""analysis.allowCustomQueries reaches the operator as MODELDEPLOY_ALLOW_CUSTOM_QUERIES,
off unless the admin turns it on (per-object PromQL can read any namespace)."""

from __future__ import annotations

import pytest

from modeldeploy.analyzer import Analyzer

from .helmkube import REPO, find


def _env(docs: list) -> dict:
    (deploy,) = find(docs, "Deployment")
    return {e["name"]: e.get("value") for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}


@pytest.mark.parametrize(("args", "allowed"), [((), False), (("--set", "analysis.allowCustomQueries=true"), True)])
def test_the_value_reaches_the_operator(tools, args, allowed) -> None:
    env = _env(tools.template(*args))
    assert env["MODELDEPLOY_ALLOW_CUSTOM_QUERIES"] == str(allowed).lower()
    assert Analyzer.from_env(env).allow_custom_queries is allowed


def test_a_non_boolean_is_refused(tools) -> None:
    out = tools.helm("template", "x", str(REPO), "--set-string", "analysis.allowCustomQueries=yes", check=False)
    assert out.returncode != 0 and "/analysis/allowCustomQueries" in out.stderr, out.stderr
