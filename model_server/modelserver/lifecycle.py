"""Processes of one server die together.

The wrapper's main process forks a gRPC server, a metrics server (a second gunicorn),
a multiprocessing manager and the REST workers. If the main process is killed
outright (SIGKILL, OOM killer, a parent's PR_SET_PDEATHSIG), those children are
re-parented to init and keep their ports: in a pod that ends with the container, but
in a sandbox or a test run it leaks servers. So every process forked after this
module is imported asks the kernel for SIGKILL when its parent goes away.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1
logger = logging.getLogger(__name__)


def _die_with_parent() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: nothing to do
        pass
    # The parent may have died between fork and prctl: then we are init's already.
    if os.getppid() == 1:
        os._exit(0)


def install() -> None:
    """Idempotent; Linux only (elsewhere the wrapper's default behaviour stays)."""
    global _installed
    if sys.platform.startswith("linux") and not _installed:
        os.register_at_fork(after_in_child=_die_with_parent)
        _installed = True


_installed = False
