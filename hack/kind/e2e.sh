#!/usr/bin/env bash
# End-to-end on a kind cluster: Istio, Prometheus (operator), Seldon Core 1.17 (the last
# Apache-2.0 release), the operator and model-server images built here and loaded into
# kind, the chart installed with `helm install`, then the scenarios of tests/chart/
# (tests/chart/scenarios.py, shared with the local RBAC tests) against it. The install
# follows docs/install.md: the chart packaged by hack/package-chart.sh, its CRD applied
# first (as an upgrade must), then `helm upgrade --install` of the package.
#
#   hack/kind/e2e.sh [all|up|test|uninstall|logs|down]     # default: all (= up, then test)
#
# Needs docker, kind, helm, kubectl, and two Pythons: $PYTHON with .[operator,dev]
# (pytest, the kubernetes client) and $MODEL_PYTHON with .[model] (trains the artifacts).
# .github/workflows/e2e-kind.yaml runs it; the development machines cannot (no images).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$REPO/hack/kind
CLUSTER=${KIND_CLUSTER:-modeldeploy-e2e}
WORK=${E2E_WORKDIR:-${RUNNER_TEMP:-/tmp}/modeldeploy-e2e}
PYTHON=${PYTHON:-python3}
MODEL_PYTHON=${MODEL_PYTHON:-$PYTHON}
OPERATOR_IMAGE=modeldeploy/operator:e2e
MODEL_IMAGE=modeldeploy/model-server:e2e
ISTIO_VERSION=1.20.3
KPS_VERSION=56.21.4
SELDON_VERSION=1.17.1
export KUBECONFIG=$WORK/kubeconfig

say() { printf '\n[e2e] %s\n' "$*"; }
chart() {  # chart RELEASE CHART REPO VERSION NAMESPACE [helm args...]
    local release=$1 name=$2 repo=$3 version=$4 ns=$5
    shift 5
    helm upgrade --install "$release" "$name" --repo "$repo" --version "$version" \
        --namespace "$ns" --create-namespace --wait --timeout 10m "$@"
}

artifacts() {
    if [ -f "$WORK/models/2.0.0/model.json" ]; then
        say "model artifacts: already in $WORK/models"
        return
    fi
    say "model artifacts: training into $WORK/models"
    (cd "$REPO/model_server" && "$MODEL_PYTHON" -m modelserver.train --out "$WORK/models")
}

cluster() {
    if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
        say "kind cluster $CLUSTER: exists"
        kind export kubeconfig --name "$CLUSTER" --kubeconfig "$KUBECONFIG"
        return
    fi
    say "kind cluster $CLUSTER: creating"
    sed "s|@ARTIFACTS@|$WORK/models|" "$HERE/cluster.yaml" > "$WORK/cluster.yaml"
    kind create cluster --name "$CLUSTER" --kubeconfig "$KUBECONFIG" --wait 120s --config "$WORK/cluster.yaml"
}

images() {
    say "images: building and loading $OPERATOR_IMAGE, $MODEL_IMAGE"
    docker build -t "$OPERATOR_IMAGE" "$REPO"
    docker build -t "$MODEL_IMAGE" "$REPO/model_server"
    kind load docker-image --name "$CLUSTER" "$OPERATOR_IMAGE" "$MODEL_IMAGE"
}

platform() {
    local istio=https://istio-release.storage.googleapis.com/charts
    say "Istio $ISTIO_VERSION"
    chart istio-base base "$istio" "$ISTIO_VERSION" istio-system
    chart istiod istiod "$istio" "$ISTIO_VERSION" istio-system
    chart istio-ingressgateway gateway "$istio" "$ISTIO_VERSION" istio-system --set service.type=NodePort
    say "Prometheus (kube-prometheus-stack $KPS_VERSION, Prometheus and its operator only)"
    chart kps kube-prometheus-stack https://prometheus-community.github.io/helm-charts "$KPS_VERSION" monitoring \
        -f "$HERE/kube-prometheus-stack.yaml"
    say "Seldon Core $SELDON_VERSION"
    chart seldon-core seldon-core-operator https://storage.googleapis.com/seldon-charts "$SELDON_VERSION" seldon-system \
        --set istio.enabled=true --set istio.gateway=istio-system/seldon-gateway --set usageMetrics.enabled=false
    kubectl apply -f "$HERE/seldon.yaml" -f "$HERE/models.yaml"
}

modeldeploy() {
    say "modeldeploy: the packaged chart (hack/package-chart.sh), CRD first, then helm upgrade --install"
    local tgz
    tgz=$("$REPO/hack/package-chart.sh" "$WORK/dist" | tail -1)
    kubectl apply --server-side --force-conflicts -f "$REPO/crds/modeldeploy.io_modeldeployments.yaml"
    helm upgrade --install modeldeploy "$tgz" --namespace modeldeploy-system --create-namespace \
        -f "$HERE/values.yaml" --wait --timeout 5m
    kubectl -n modeldeploy-system rollout status deployment/modeldeploy --timeout 120s
}

run_tests() {
    say "scenarios"
    # The wheel installs modeldeploy only: the tests' sandbox and model server come from here.
    (cd "$REPO" && PYTHONPATH="$REPO/operator:$REPO/experiments:$REPO/model_server" \
        MODELDEPLOY_TEST_KUBECONFIG=$KUBECONFIG MODELDEPLOY_E2E_IN_CLUSTER=1 \
        MODELDEPLOY_E2E_NAMESPACE=modeldeploy-e2e MODELDEPLOY_E2E_MODEL_IMAGE=$MODEL_IMAGE \
        "$PYTHON" -m pytest tests/chart/test_kind.py -v -rs -p no:cacheprovider)
}

uninstall() {
    say "uninstall: helm uninstall keeps the CRD and the ModelDeployments (docs/install.md)"
    helm uninstall modeldeploy --namespace modeldeploy-system --wait --timeout 2m
    kubectl get crd modeldeployments.modeldeploy.io >/dev/null
    if kubectl -n modeldeploy-system get deployment modeldeploy >/dev/null 2>&1; then
        echo "uninstall: the operator's Deployment is still there" >&2
        exit 1
    fi
}

logs() {
    local out=$WORK/logs
    mkdir -p "$out"
    say "logs: $out"
    kubectl -n modeldeploy-system logs deployment/modeldeploy --tail=-1 > "$out/operator.log" 2>&1 || true
    kubectl get modeldeployments,seldondeployments -A -o yaml > "$out/objects.yaml" 2>&1 || true
    kubectl get events -A --sort-by=.lastTimestamp > "$out/events.txt" 2>&1 || true
    kubectl get pods -A -o wide > "$out/pods.txt" 2>&1 || true
    kubectl -n seldon-system logs deployment/seldon-controller-manager --tail=500 > "$out/seldon.log" 2>&1 || true
}

case ${1:-all} in
    up) mkdir -p "$WORK"; artifacts; cluster; images; platform; modeldeploy ;;
    test) run_tests ;;
    uninstall) uninstall ;;
    all) mkdir -p "$WORK"; artifacts; cluster; images; platform; modeldeploy; run_tests ;;
    logs) logs ;;
    down) kind delete cluster --name "$CLUSTER" ;;
    *) echo "usage: $0 [all|up|test|logs|down]" >&2; exit 2 ;;
esac
