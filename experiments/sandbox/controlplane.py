"""A real Kubernetes control plane on loopback: etcd + kube-apiserver, envtest-style.

kind cannot run where no container image can be pulled, so tests and the sandbox start
the two upstream binaries directly (built from the Go module proxy by `hack/setup.sh`, or
taken from ``KUBEBUILDER_ASSETS``). The API server runs with RBAC authorization, an admin
authenticated by a client certificate in ``system:masters``, and service-account signing
keys, so RBAC and the TokenRequest API behave as on a cluster. There is no
kube-controller-manager and no kubelet: no garbage collection by ownerReference, no pods.

Run ``python -m sandbox.controlplane`` to keep one up in the foreground until Ctrl-C.
"""

from __future__ import annotations

import base64
import os
import shutil
import ssl
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .pki import CertificateAuthority, signing_key
from .processes import ManagedProcess, StartupError, free_port, run_in_foreground

K8S_VERSION = "v1.33.13"
ETCD_VERSION = "v3.5.21"
STARTUP_TIMEOUT = 60.0


def binaries_dir() -> Path:
    """Where kube-apiserver and etcd are: KUBEBUILDER_ASSETS, else what setup built."""
    for var in ("KUBEBUILDER_ASSETS", "MODELDEPLOY_CONTROLPLANE_BIN"):
        if os.environ.get(var):
            return Path(os.environ[var])
    cache = Path(os.environ.get("MODELDEPLOY_CACHE", Path.home() / ".cache" / "modeldeploy"))
    built = sorted((cache / "bin").glob(f"k8s-{K8S_VERSION}-etcd-{ETCD_VERSION}-*"))
    if not built:
        raise StartupError(
            f"no kube-apiserver/etcd under {cache / 'bin'}: run `hack/setup.sh controlplane` "
            "(builds them from the Go module proxy) or set KUBEBUILDER_ASSETS"
        )
    return built[-1]


def write_kubeconfig(path: Path, server: str, ca_pem: bytes, user: str, cert_pem: bytes, key_pem: bytes) -> Path:
    b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "modeldeploy-local", "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)}}],
        "users": [{"name": user, "user": {"client-certificate-data": b64(cert_pem), "client-key-data": b64(key_pem)}}],
        "contexts": [{"name": user, "context": {"cluster": "modeldeploy-local", "user": user}}],
        "current-context": user,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@dataclass
class ControlPlane:
    """A running etcd + kube-apiserver pair; `stop()` (or the context manager) ends both."""

    workdir: Path
    server: str
    kubeconfig: Path
    ca: CertificateAuthority
    processes: list[ManagedProcess] = field(default_factory=list)
    _own_workdir: bool = False

    def user_kubeconfig(self, user: str, groups: tuple[str, ...] = ()) -> Path:
        """A kubeconfig for `user` (no RBAC rights unless something grants them)."""
        pair = self.ca.client(user, groups)
        return write_kubeconfig(
            self.workdir / f"kubeconfig-{user.replace(':', '_')}", self.server, self.ca.cert_pem,
            user, pair.cert_pem, pair.key_pem,
        )

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> ControlPlane:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _readyz(server: str, ca_file: Path, cert: Path, key: Path) -> bool:
    ctx = ssl.create_default_context(cafile=str(ca_file))
    ctx.load_cert_chain(str(cert), str(key))
    with urllib.request.urlopen(f"{server}/readyz", context=ctx, timeout=2) as r:
        return r.status == 200


def start(workdir: Path | None = None, bin_dir: Path | None = None) -> ControlPlane:
    """Start etcd and kube-apiserver on free loopback ports and wait until ready."""
    bin_dir = bin_dir or binaries_dir()
    for b in ("etcd", "kube-apiserver"):
        if not os.access(bin_dir / b, os.X_OK):
            raise StartupError(f"{b}: not found or not executable in {bin_dir}")
    own = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="modeldeploy-cp-")) if workdir is None else workdir
    pki_dir = workdir / "pki"
    ca = CertificateAuthority()
    ca_file = pki_dir / "ca.crt"
    pki_dir.mkdir(parents=True, exist_ok=True)
    ca_file.write_bytes(ca.cert_pem)
    serving_crt, serving_key = ca.server(["127.0.0.1", "localhost"]).write(pki_dir, "apiserver")
    admin_crt, admin_key = ca.client("admin", ["system:masters"]).write(pki_dir, "admin")
    sa_pub, sa_key = signing_key().write(pki_dir, "service-account")

    cp = ControlPlane(workdir=workdir, server="", kubeconfig=workdir / "kubeconfig", ca=ca, _own_workdir=own)
    try:
        etcd_port, peer_port = free_port(), free_port()
        etcd = ManagedProcess(
            "etcd",
            [
                str(bin_dir / "etcd"),
                f"--data-dir={workdir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
            workdir / "etcd.log",
            port=etcd_port,
        ).start()
        cp.processes.append(etcd)
        health = f"http://127.0.0.1:{etcd_port}/health"
        etcd.wait_until(lambda: urllib.request.urlopen(health, timeout=1).status == 200, STARTUP_TIMEOUT)

        api_port = free_port()
        cp.server = f"https://127.0.0.1:{api_port}"
        apiserver = ManagedProcess(
            "kube-apiserver",
            [
                str(bin_dir / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                f"--cert-dir={pki_dir}",
                f"--tls-cert-file={serving_crt}",
                f"--tls-private-key-file={serving_key}",
                f"--client-ca-file={ca_file}",
                f"--secure-port={api_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                "--authorization-mode=RBAC",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--allow-privileged=true",
                # No kube-controller-manager mints tokens, so don't require SA tokens on pods.
                "--disable-admission-plugins=ServiceAccount",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={sa_pub}",
                f"--service-account-signing-key-file={sa_key}",
                "--endpoint-reconciler-type=none",
                "--profiling=false",
                "-v=1",
            ],
            workdir / "kube-apiserver.log",
            port=api_port,
        ).start()
        cp.processes.append(apiserver)
        apiserver.wait_until(lambda: _readyz(cp.server, ca_file, admin_crt, admin_key), STARTUP_TIMEOUT, 0.25)
        write_kubeconfig(cp.kubeconfig, cp.server, ca.cert_pem, "admin", admin_crt.read_bytes(), admin_key.read_bytes())
        return cp
    except BaseException:
        cp.stop()
        raise


def main() -> int:
    """Keep a control plane up in the foreground, for people, until Ctrl-C."""
    t0 = time.monotonic()
    try:
        cp = start()
    except StartupError as e:
        print(f"control plane failed to start: {e}", file=sys.stderr)
        return 1
    print(f"kube-apiserver {K8S_VERSION} + etcd {ETCD_VERSION} ready in {time.monotonic() - t0:.1f}s at {cp.server}")
    print(f"export KUBECONFIG={cp.kubeconfig}")
    print("Ctrl-C stops both and removes their data.", flush=True)
    try:
        dead = run_in_foreground(cp.processes)
        if dead:
            print(f"{', '.join(dead)} exited; see {cp.workdir}", file=sys.stderr)
            return 1
    finally:
        cp.stop()
        print("control plane stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
