"""Child processes that never outlive the sandbox.

Every server the sandbox and the tests start (etcd, kube-apiserver, Prometheus, model
servers, the operator) goes through `ManagedProcess`, so that all of them share three
guarantees the tests rely on:

* the child gets SIGKILL from the kernel when its parent dies (``PR_SET_PDEATHSIG``), so
  even a SIGKILLed pytest leaves nothing running;
* it runs in a process group of its own, and `stop` signals the whole group, so servers
  that fork workers (gunicorn) go with it;
* start-up failures say which binary, which port, and show the last lines of its log.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


class StartupError(RuntimeError):
    """A server did not come up; the message names it, its port and its last log lines."""


def free_port() -> int:
    """A loopback port that was free a moment ago (callers retry on the rare collision)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class ManagedProcess:
    """One child process with its output in a log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        port: int | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.port = port
        self.env = env
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        except OSError as e:
            raise StartupError(f"{self.name}: cannot execute {self.argv[0]}: {e}") from e
        finally:
            log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was never started"
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def failure(self, what: str) -> StartupError:
        where = f" on port {self.port}" if self.port else ""
        return StartupError(
            f"{self.name} ({self.argv[0]}){where} {what}; log {self.log_path}, last lines:\n"
            f"{tail(self.log_path)}"
        )

    def wait_until(self, ready: Callable[[], bool], timeout: float, interval: float = 0.1) -> None:
        """Poll `ready` until it holds; fail fast, with the log, if the process exits."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running():
                rc = self.proc.returncode if self.proc else None
                raise self.failure(f"exited with code {rc} before it was ready")
            try:
                if ready():
                    return
            except Exception:  # noqa: BLE001 - not ready yet, whatever the probe raised
                pass
            if time.monotonic() > deadline:
                raise self.failure(f"was not ready after {timeout:.0f}s")
            time.sleep(interval)

    def signal(self, sig: int) -> None:
        if self.running():
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL what is left after `timeout`."""
        if self.proc is None:
            return
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait(5)
        # Workers that ignored SIGTERM but stayed in the group.
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def kill(self) -> None:
        """SIGKILL, as a crash would: no clean-up runs in the child."""
        self.signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(5)


def run_in_foreground(processes: Sequence[ManagedProcess]) -> list[str]:
    """Block until Ctrl-C (or SIGTERM), or until one of `processes` exits; the names of
    those that exited (empty after a signal). The caller stops everything afterwards."""
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    while not stop:
        dead = [p.name for p in processes if not p.running()]
        if dead:
            return dead
        time.sleep(0.5)
    return []


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0
