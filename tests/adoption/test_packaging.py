"""What ships installs with its own dependencies only: the kubectl plugin
(`pip install "modeldeploy[cli]"`) runs without the operator's (kopf, the statistics,
the Prometheus clients), and imports nothing its extra does not list."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Installed names of the operator's dependencies the plugin must do without, as imported.
OPERATOR_ONLY = ("kopf", "scipy", "numpy", "prometheus_api_client", "prometheus_client")
# The `cli` extra's requirements by the top-level module they install.
CLI_MODULES = {"kubernetes": "kubernetes", "pyyaml": "yaml"}

BLOCKED_RUN = f"""
import json, sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {OPERATOR_ONLY!r}:
            raise ImportError("blocked by the test: " + name)
sys.meta_path.insert(0, Blocker())
from modeldeploy import cli
try:
    cli.main(["--help"])
except SystemExit as e:
    assert e.code == 0, e.code
print(json.dumps(sorted(m for m in sys.modules if m.startswith("modeldeploy"))))
"""


def cli_extra() -> list[str]:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    return extras["cli"]


def plugin_modules() -> list[str]:
    out = subprocess.run([sys.executable, "-c", BLOCKED_RUN], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_plugin_runs_with_the_operators_dependencies_blocked() -> None:
    modules = plugin_modules()
    assert "modeldeploy.cli" in modules
    # The operator's shells and the statistics stay out of the plugin.
    assert not [m for m in modules if m.split(".")[1:2] and m.split(".")[1] in
                ("handlers", "kube", "analyzer", "analysis", "providers", "metrics", "events", "scheduler")], modules


def test_the_plugins_modules_import_only_the_standard_library_and_the_cli_extra() -> None:
    allowed = {CLI_MODULES[r.split("=")[0].split(">")[0].split("<")[0].strip().lower()] for r in cli_extra()}
    # The kubernetes client's transport: its exceptions reach the plugin, and kubernetes
    # requires it.
    allowed.add("urllib3")
    third_party: dict[str, set[str]] = {}
    for module in plugin_modules():
        path = REPO / "operator" / (module.replace(".", "/") + ".py")
        if not path.exists():
            path = path.with_suffix("") / "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "modeldeploy":
                    third_party.setdefault(top, set()).add(module)
    assert set(third_party) <= allowed, {k: v for k, v in third_party.items() if k not in allowed}
