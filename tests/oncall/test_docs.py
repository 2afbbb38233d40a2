"""docs/runbook.md covers every phase, every event reason the operator emits and every
alert; docs/metrics.md every metric (test_metrics.py)."""

from __future__ import annotations

import re

from modeldeploy import rollout

from .conftest import REPO

RUNBOOK = (REPO / "docs" / "runbook.md").read_text()
SOURCES = "\n".join(f.read_text() for f in sorted((REPO / "operator" / "modeldeploy").rglob("*.py")))

#: The reasons the issue lists; the source scan below adds any new one.
REASONS = {
    "Deploying", "Available", "DeployFailed", "RolloutStarted", "Superseded", "StepAdvanced", "Shadowing",
    "AnalysisPass", "AnalysisFail", "AnalysisInconclusive", "AnalysisError", "Paused", "Resumed", "Promoting",
    "Promoted", "RollingBack", "Aborting", "RolledBack", "Aborted", "InvalidSpec",
    *(f"Command{c.capitalize()}" for c in rollout.COMMANDS),
}


def emitted_reasons() -> set[str]:
    """Event reasons written literally in the operator's sources: the string literals of an
    emit()'s first argument (conditionals and lookups included), the reasons passed to
    deploy_fresh()/start_rollout(), and post_event()s of the handlers."""
    found: set[str] = set()
    for m in re.finditer(r"self\.emit\((.*?),\s*(?:f\"|message\b|msg\b)", SOURCES, re.S):
        found |= set(re.findall(r'"([A-Z][A-Za-z]+)"', m.group(1)))
    found |= set(re.findall(r'(?:deploy_fresh|start_rollout)\(\s*"([A-Z]\w+)"', SOURCES))
    found |= set(re.findall(r'post_event\(\s*mdep,\s*"\w+",\s*"([A-Z]\w+)"', SOURCES))
    return found


def headings(prefix: str) -> set[str]:
    out = set()
    for h in re.findall(rf"^### {prefix}: (.+)$", RUNBOOK, re.M):
        out.update(x.strip() for x in h.split(","))
    return out


def phases() -> set[str]:
    """rollout.py's phase constants (PENDING = "Pending", ...)."""
    return {v for k, v in vars(rollout).items() if k.isupper() and isinstance(v, str) and re.fullmatch(r"[A-Z][a-zA-Z]+", v)}


def test_every_phase_has_a_section_and_a_metric_series() -> None:
    from modeldeploy import metrics

    assert {"Pending", "Stable", "Progressing", "Paused", "Failed"} <= phases()
    assert phases() - headings("Phase") == set()
    assert phases() <= set(metrics.PHASES)


def test_every_event_reason_has_a_section() -> None:
    assert {"Deploying", "Superseded", "Available", "InvalidSpec", "RollingBack", "Aborting"} <= emitted_reasons()
    missing = (REASONS | emitted_reasons()) - headings("Event")
    assert not missing, f"document in docs/runbook.md: {sorted(missing)}"


def test_the_runbook_documents_the_plugin_exit_codes() -> None:
    from modeldeploy import cli

    for code in cli.EXIT_CODES:
        assert f"`{code}`" in RUNBOOK
