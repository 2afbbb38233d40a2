"""Small Kubernetes helpers shared by the sandbox and the tests."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException


def install_crds(api: client.ApiClient, files: Iterable[Path], timeout: float = 30) -> None:
    """Create or replace each CRD, then wait until the API server serves it."""
    ext = client.ApiextensionsV1Api(api)
    names = []
    for path in files:
        for doc in yaml.safe_load_all(Path(path).read_text()):
            if not doc:
                continue
            name = doc["metadata"]["name"]
            names.append(name)
            try:
                ext.create_custom_resource_definition(doc)
            except ApiException as e:
                if e.status != 409:
                    raise
                doc["metadata"]["resourceVersion"] = ext.read_custom_resource_definition(name).metadata.resource_version
                ext.replace_custom_resource_definition(name, doc)
    deadline = time.monotonic() + timeout
    for name in names:
        while True:
            conds = ext.read_custom_resource_definition(name).status.conditions or []
            if any(c.type == "Established" and c.status == "True" for c in conds):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {name} not Established after {timeout}s")
            time.sleep(0.2)
