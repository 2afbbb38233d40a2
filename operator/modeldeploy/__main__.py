"""`python -m modeldeploy`: run the operator (the chart's container runs exactly this)."""

from __future__ import annotations

import argparse
import logging
import sys

import kopf


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m modeldeploy", description="The modeldeploy operator.")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("--namespace", "-n", action="append", default=[],
                       help="watch only this namespace (repeatable); the default is the whole cluster")
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="watch the whole cluster (default)")
    p.add_argument("--peering", help="coordinate several replicas through this KopfPeering name")
    p.add_argument("--priority", type=int, default=0, help="peering priority of this replica")
    p.add_argument("--liveness", default="http://0.0.0.0:8080/healthz",
                   help="liveness endpoint URL, or 'off' (default %(default)s)")
    p.add_argument("--verbose", "-v", action="store_true")
    args = p.parse_args(argv)

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from . import handlers  # noqa: F401 - registers the handlers with kopf

    kopf.run(
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        standalone=not args.peering,
        peering_name=args.peering,
        priority=args.priority,
        liveness_endpoint=None if args.liveness == "off" else args.liveness,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
