"""The README's main command: bring the sandbox up and show it working."""

from __future__ import annotations

import sys
import time

from kubernetes import client, config

from . import controlplane


def main() -> int:
    t0 = time.monotonic()
    with controlplane.start() as cp:
        api = config.new_client_from_config(config_file=str(cp.kubeconfig))
        client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="demo")))
        version = client.VersionApi(api).get_code()
        print(f"control plane up in {time.monotonic() - t0:.1f}s: Kubernetes {version.git_version} at {cp.server}")
        print("namespace 'demo' created")
    print("control plane stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
