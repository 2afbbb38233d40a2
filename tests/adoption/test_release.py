"""Release basics: one semantic version for the package and the chart, the licence, the
changelog, what the wheel installs, and the chart's own README with a values table that
is never stale."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import tomllib
import warnings
from pathlib import Path

import pytest
import yaml

import modeldeploy

REPO = Path(__file__).resolve().parents[2]
# semver.org's grammar (no leading "v")
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")


def chart() -> dict:
    return yaml.safe_load((REPO / "Chart.yaml").read_text())


def pyproject() -> dict:
    from setuptools.config.pyprojecttoml import read_configuration

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # [tool.setuptools] is "beta" in setuptools' words
        return read_configuration(REPO / "pyproject.toml", expand=True)


def test_package_and_chart_share_one_semantic_version() -> None:
    c, p = chart(), pyproject()
    assert SEMVER.match(modeldeploy.__version__), modeldeploy.__version__
    assert c["version"] == c["appVersion"] == p["project"]["version"] == modeldeploy.__version__, (
        "bump operator/modeldeploy/__init__.py __version__ and Chart.yaml version and appVersion together")


def test_the_licence_is_the_apache_license_the_metadata_names() -> None:
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["license"] == {"text": "Apache-2.0"}


def test_the_changelog_has_a_section_for_this_version() -> None:
    text = (REPO / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[{re.escape(modeldeploy.__version__)}\]", text, re.M), "add a CHANGELOG.md section"


def test_the_wheel_installs_the_modeldeploy_package_only_and_the_plugin_script() -> None:
    p = pyproject()
    packages = p["tool"]["setuptools"]["packages"]
    assert packages and all(n == "modeldeploy" or n.startswith("modeldeploy.") for n in packages), packages
    on_disk = {str(d.relative_to(REPO / "operator")).replace("/", ".") for d in (REPO / "operator" / "modeldeploy")
               .rglob("__init__.py") for d in [d.parent]}
    assert set(packages) == on_disk, "a subpackage of modeldeploy is missing from the wheel"
    assert p["project"]["scripts"] == {"kubectl-modeldeploy": "modeldeploy.cli:main"}
    assert sorted(p["project"]["optional-dependencies"]["cli"]) == ["kubernetes==37.0.2", "pyyaml>=6,<7"]


def test_the_chart_readme_values_table_is_current() -> None:
    r = subprocess.run([sys.executable, str(REPO / "hack" / "chart_readme.py"), "--check"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    text = (REPO / "docs" / "chart" / "README.md").read_text()
    values = yaml.safe_load((REPO / "values.yaml").read_text())
    for key in ("watchNamespaces", "prometheus.url", "notifications.webhooks", "alerts.runbookUrl"):
        assert f"| `{key}` |" in text, key
    assert values["alerts"]["runbookUrl"].startswith("https://") and values["alerts"]["runbookUrl"] in text


def test_the_staleness_check_fails_when_values_change(tmp_path) -> None:
    """The check is not vacuous: a copy of the repository with a new value fails it."""
    for name in ("values.yaml", "values.schema.json", "hack/chart_readme.py", "docs/chart/README.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text((REPO / name).read_text())
    (tmp_path / "values.yaml").write_text((REPO / "values.yaml").read_text().replace(
        "watchNamespaces: []", "watchNamespaces: [team-a]"))
    r = subprocess.run([sys.executable, str(tmp_path / "hack" / "chart_readme.py"), "--check"], capture_output=True,
                       text=True)
    assert r.returncode == 1 and "docs/chart/README.md is stale: run python3 hack/chart_readme.py" in r.stderr


def test_the_packaged_chart_carries_the_chart_readme(tmp_path) -> None:
    from tests.chart.helmkube import Tools

    tools = Tools(tmp_path / "home")
    env = {**tools.env, "PATH": f"{Path(tools.helm_bin).parent}:{tools.env['PATH']}"}
    out = subprocess.run([str(REPO / "hack" / "package-chart.sh"), str(tmp_path / "dist")], capture_output=True,
                         text=True, env=env, check=True).stdout.strip()
    tgz = Path(out.splitlines()[-1])
    assert tgz.name == f"modeldeploy-{modeldeploy.__version__}.tgz"
    with tarfile.open(tgz) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
        readme = tar.extractfile("modeldeploy/README.md").read().decode()
    assert readme == (REPO / "docs" / "chart" / "README.md").read_text()
    assert "make demo" not in readme and "| `prometheus.url` |" in readme
    assert {"Chart.yaml", "values.schema.json", "LICENSE", "crds/modeldeploy.io_modeldeployments.yaml",
            "alerts/modeldeploy-rules.yaml", "dashboards/modeldeploy.json"} <= names
    assert not [n for n in names if n.startswith(("alerts/tests", "docs/", "examples/", "operator/"))]
    tools.helm("lint", "--strict", str(tgz))


@pytest.mark.parametrize("path", ["CONTRIBUTING.md", "CHANGELOG.md", "docs/install.md", "docs/krew/modeldeploy.yaml"])
def test_the_adoption_documents_exist(path: str) -> None:
    assert (REPO / path).stat().st_size > 500


def test_the_krew_manifest_names_this_version_and_the_plugin_binary() -> None:
    doc = yaml.safe_load((REPO / "docs" / "krew" / "modeldeploy.yaml").read_text())
    assert doc["kind"] == "Plugin" and doc["metadata"]["name"] == "modeldeploy"
    assert doc["spec"]["version"] == f"v{modeldeploy.__version__}"
    for platform in doc["spec"]["platforms"]:
        assert platform["bin"] == "kubectl-modeldeploy"
        assert f"/v{modeldeploy.__version__}/" in platform["uri"] and re.fullmatch(r"[0-9a-f]{64}", platform["sha256"])
