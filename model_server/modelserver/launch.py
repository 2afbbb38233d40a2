"""How to start one model server outside Kubernetes, exactly as Seldon Core v1 would.

The sandbox, the tests and the benchmark all build their command lines here, so
there is one definition of "the way Seldon runs this image". Nothing here starts a
process: callers own process management.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

INTERFACE = "modelserver.component.TorchClassifier"
MONITOR_INTERFACE = "modelserver.monitor.OutputMonitor"
# What Seldon's operator injects; the wrapper's own default is /metrics.
METRICS_PATH = "/prometheus"
DEFAULT_IMAGE = "modeldeploy/model-server:0.1.0"
# gunicorn processes per server (the image's GUNICORN_WORKERS): while one worker reads a
# large body or serves a slow request, the others take the rest.
WORKERS = 2
# One thread per worker, always: the wrapper's SeldonMetrics.update reads a worker's
# counters from the metrics manager and writes them back under two separate lock
# holds, so two threads of one worker lose each other's increments (measured: 8
# concurrent clients, 4 threads, 800 predictions counted as 373).
THREADS = 1


def microservice_binary() -> str:
    """`seldon-core-microservice` of the running interpreter's environment."""
    return str(Path(sys.executable).parent / "seldon-core-microservice")


def seldon_parameters(**values: Any) -> str:
    """The `--parameters` JSON (also Seldon's PREDICTIVE_UNIT_PARAMETERS), typed from the values."""
    kinds = {bool: "BOOL", int: "INT", float: "FLOAT", str: "STRING"}
    params = []
    for name, value in values.items():
        if type(value) not in kinds:
            raise TypeError(f"parameter {name}: {type(value).__name__} is not one of bool, int, float, str")
        text = str(value).lower() if isinstance(value, bool) else str(value)
        params.append({"name": name, "value": text, "type": kinds[type(value)]})
    return json.dumps(params)


def seldon_env(
    deployment: str,
    predictor: str,
    version: str,
    unit: str = "classifier",
    image: str = DEFAULT_IMAGE,
    http_port: int | None = None,
    metrics_port: int | None = None,
    grpc_port: int | None = None,
) -> dict[str, str]:
    """The variables Seldon Core v1's operator sets on a model container.

    deployment: SeldonDeployment name (metric label deployment_name);
    predictor: predictor name (predictor_name); version: the predictor's
    `labels.version` (predictor_version); unit: the graph node / container name
    (model_name); image: the container image (model_image, and model_version = tag).
    """
    env = {
        "SELDON_DEPLOYMENT_ID": deployment,
        "PREDICTOR_ID": predictor,
        "PREDICTOR_LABELS": json.dumps({"version": version}),
        "PREDICTIVE_UNIT_ID": unit,
        "PREDICTIVE_UNIT_IMAGE": image,
        "SELDON_EXECUTOR_ENABLED": "true",
        "PREDICTIVE_UNIT_METRICS_ENDPOINT": METRICS_PATH,
    }
    ports = {
        "PREDICTIVE_UNIT_HTTP_SERVICE_PORT": http_port,
        "PREDICTIVE_UNIT_SERVICE_PORT": http_port,
        "PREDICTIVE_UNIT_METRICS_SERVICE_PORT": metrics_port,
        "PREDICTIVE_UNIT_GRPC_SERVICE_PORT": grpc_port,
    }
    env.update({k: str(v) for k, v in ports.items() if v is not None})
    return env


def command(
    http_port: int,
    metrics_port: int,
    grpc_port: int,
    parameters: Mapping[str, Any],
    workers: int = WORKERS,
    threads: int = THREADS,
    interface: str = INTERFACE,
    service_type: str = "MODEL",
) -> list[str]:
    """argv for one server; `parameters` as in `seldon_parameters` (model_uri, ...).

    `interface`/`service_type`: the output monitor is `MONITOR_INTERFACE`, "TRANSFORMER"
    (the wrapper's CLI has no OUTPUT_TRANSFORMER type; the route decides the method).
    """
    if threads != THREADS:
        raise ValueError(f"threads={threads}: the wrapper's custom metrics lose updates with more than one "
                         "thread per worker; add workers instead")  # fmt: skip
    if workers < 1:
        raise ValueError(f"workers={workers}: at least 1")
    return [
        microservice_binary(), interface,
        "--service-type", service_type,
        "--http-port", str(http_port),
        "--metrics-port", str(metrics_port),
        "--grpc-port", str(grpc_port),
        "--workers", str(workers),
        "--threads", str(threads),
        "--parameters", seldon_parameters(**parameters),
    ]  # fmt: skip
