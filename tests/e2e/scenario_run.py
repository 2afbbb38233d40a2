"""Run one named sandbox scenario and print its row (pytest shows it for a failure)."""

from __future__ import annotations

from sandbox import scenarios


def run(sandbox: object, name: str) -> scenarios.Result:
    result = scenarios.run(sandbox, scenarios.SCENARIOS[name])
    print(f"{name}: {result.row()}")
    return result
