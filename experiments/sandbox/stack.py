"""The whole system on one machine, as one context manager.

    control plane (etcd + kube-apiserver)   CRDs, a namespace
    Prometheus (Debian's)  <-- scrapes --   router (Istio/executor stand-in), model servers
    Seldon stand-in        <-- watches  --  SeldonDeployments
    the operator (`python -m modeldeploy`, exactly as shipped, a subprocess)
    load generator         --> router

Everything is started through `ManagedProcess` or as daemon threads of this process, and
torn down in reverse order on exit, Ctrl-C included: nothing is left behind.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client, config

from . import artifacts, controlplane, prometheus
from .harness import Objects, operator_process
from .kubeutil import install_crds
from .loadgen import LoadGenerator
from .processes import ManagedProcess, free_port
from .router import Router
from .seldon_standin import SeldonStandIn, service_name

REPO = Path(__file__).resolve().parents[2]
CRDS = [REPO / "crds" / "modeldeploy.io_modeldeployments.yaml", REPO / "experiments" / "sandbox" / "crds" / "seldondeployments.yaml"]
log = logging.getLogger("sandbox")


@dataclass
class Stack:
    api: client.ApiClient
    kubeconfig: Path
    namespace: str
    objs: Objects
    prom: prometheus.Prometheus
    router: Router
    router_port: int
    standin: SeldonStandIn
    operator: ManagedProcess
    artifacts: Path
    workdir: Path

    def url(self, deployment: str) -> str:
        return f"http://127.0.0.1:{self.router_port}/seldon/{self.namespace}/{deployment}/api/v1.0"

    def load(self, deployment: str, rate: float, feedback_fraction: float = 0.5, seed: int = 0,
             protocol: str = "rest", malformed_fraction: float = 0.0, dataset: str = "digits") -> LoadGenerator:
        return LoadGenerator(self.url(deployment), rate, feedback_fraction, seed,
                             feedback_base=self.predictor_services(deployment), protocol=protocol,
                             malformed_fraction=malformed_fraction, dataset=dataset)

    def predictor_services(self, deployment: str) -> Callable[[str], str | None]:
        """version -> base URL of the predictor Service serving it, as a client on a
        cluster would find it (the SeldonDeployment's predictors, Seldon's Service names);
        re-read at most once a second."""
        lock, cache = threading.Lock(), {"at": -1.0, "map": {}}

        def resolve(version: str) -> str | None:
            with lock:
                if version not in cache["map"] and time.monotonic() - cache["at"] > 1.0:
                    preds = ((self.objs.sdep(deployment) or {}).get("spec") or {}).get("predictors") or []
                    cache["at"] = time.monotonic()
                    cache["map"] = {p["labels"]["version"]: f"http://127.0.0.1:{self.router_port}/svc/"
                                    f"{self.namespace}/{service_name(deployment, p)}/api/v1.0" for p in preds}
                return cache["map"].get(version)

        return resolve

    def uri(self, artifact: str) -> str:
        return f"file://{self.artifacts / artifact}"

    def version(self, artifact: str) -> str:
        return artifacts.card_version(self.artifacts, artifact)


@contextlib.contextmanager
def up(workdir: Path | None = None, kubeconfig: Path | None = None, tick: float = 0.5,
       scrape_interval: str = "1s") -> Iterator[Stack]:
    """Bring the sandbox up (a control plane of its own unless `kubeconfig` is given)."""
    own_dir = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="modeldeploy-sandbox-")) if workdir is None else workdir
    workdir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        if own_dir:
            stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        if kubeconfig is None:
            plane = controlplane.start(workdir / "controlplane")
            stack.callback(plane.stop)
            kubeconfig = plane.kubeconfig
        api = config.new_client_from_config(config_file=str(kubeconfig))
        install_crds(api, CRDS)
        namespace = f"sandbox-{uuid.uuid4().hex[:6]}"
        client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))

        arts = artifacts.ensure_artifacts()
        router = Router()
        router_port = free_port()
        router.serve(router_port)
        stack.callback(router.close)
        router_group = prometheus.TargetGroup([f"127.0.0.1:{router_port}"], {"job": "router"})
        prom = prometheus.start(workdir / "prometheus", scrape_interval, [router_group])
        stack.callback(prom.stop)

        standin = SeldonStandIn(api, [namespace], router, artifacts.model_bin(), workdir / "model-servers",
                                on_targets=lambda groups: prom.set_targets([router_group, *groups])).start()
        stack.callback(standin.stop)
        operator = operator_process(kubeconfig, workdir / "operator.log", [namespace], tick=tick,
                                    # The shadow scenario's agreement check is a custom query: an admin opt-in.
                                    env={"MODELDEPLOY_PROMETHEUS_URL": prom.url,
                                         "MODELDEPLOY_ALLOW_CUSTOM_QUERIES": "true"}).start()
        stack.callback(operator.stop)
        yield Stack(api, kubeconfig, namespace, Objects(api, namespace), prom, router, router_port, standin,
                    operator, arts, workdir)
