"""`python -m modeldeploy`: run the operator (the chart's container runs exactly this)."""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import time

import kopf


def priority(value: str) -> int:
    """Kopf peering lets only the highest priority act, and pauses *every* peer of equal
    priority; 'auto' gives each replica its own: minus its start time in microseconds
    (plus a random tie-breaker), so the oldest replica acts and a new one stands by."""
    if value == "auto":
        return -(int(time.time() * 1_000_000) + random.randrange(1000))
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer or 'auto'") from None


def _fewer_malloc_arenas() -> None:
    """glibc gives each thread its own malloc arena; with a pool of reconcile threads that
    fragments the heap into hundreds of MB that are never returned. Two arenas suffice:
    the threads mostly wait on the API server."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass  # not glibc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m modeldeploy", description="The modeldeploy operator.")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("--namespace", "-n", action="append", default=[],
                       help="watch only this namespace (repeatable); the default is the whole cluster")
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="watch the whole cluster (default)")
    p.add_argument("--peering", help="coordinate several replicas through this KopfPeering name")
    p.add_argument("--priority", type=priority, default=0,
                   help="peering priority of this replica: an integer, or 'auto' for replicas of one Deployment "
                        "(distinct, below 0, the oldest replica highest: it acts, the others stand by)")
    p.add_argument("--concurrency", type=int, default=None,
                   help="reconciles running at once (MODELDEPLOY_CONCURRENCY, default 8)")
    p.add_argument("--liveness", default="http://0.0.0.0:8080/healthz",
                   help="liveness endpoint URL, or 'off' (default %(default)s)")
    p.add_argument("--verbose", "-v", action="store_true")
    args = p.parse_args(argv)
    _fewer_malloc_arenas()

    if args.concurrency is not None:
        if args.concurrency < 1:
            p.error(f"--concurrency: {args.concurrency} must be at least 1")
        os.environ["MODELDEPLOY_CONCURRENCY"] = str(args.concurrency)  # read when handlers is imported
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        # Kopf logs every handler call of every object at INFO: thousands of lines a minute
        # with many objects. Its warnings and errors stay; our own log says what happened.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
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
