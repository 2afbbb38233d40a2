#!/usr/bin/env bash
# Packages the Helm chart with its own README (docs/chart/README.md: install, upgrade,
# uninstall and the values table) instead of the repository's developer README.
# The repository root is the chart, and Helm always packages the chart root's README.md,
# so the chart's files are staged in a temporary directory with the chart README swapped in.
#
#   hack/package-chart.sh [DESTINATION]   # default: dist/; prints the .tgz path
#
# CI (.github/workflows/e2e-kind.yaml) installs the package this makes.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
DEST=${1:-$REPO/dist}
command -v helm >/dev/null || { echo "package-chart: helm is not on PATH" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
chart=$stage/modeldeploy
mkdir -p "$chart" "$DEST"
# What the chart is made of (tests/chart/test_chart.py lists the same); .helmignore
# still applies inside the stage (alerts/tests/ stays out).
for f in Chart.yaml values.yaml values.schema.json .helmignore LICENSE templates crds alerts dashboards; do
    cp -R "$REPO/$f" "$chart/"
done
cp "$REPO/docs/chart/README.md" "$chart/README.md"
helm package "$chart" --destination "$DEST" | sed 's/^.*saved it to: //'
