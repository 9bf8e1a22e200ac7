"""Throwaway `redis-server` processes for the cache tests: single servers and a cluster.

Each server runs in the foreground (`--daemonize no`) in a temporary directory, without
persistence, bound to 127.0.0.1 on a free port; the test that starts it stops it. On Linux a
server also dies with the process that started it, however that process ends.
"""

from __future__ import annotations

import atexit
import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import services_required

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")


def require_redis_binaries() -> tuple[str, str]:
    """The redis-server and redis-cli paths, or skip (fail under EDU_REQUIRE_SERVICES=1)."""
    if REDIS_SERVER and REDIS_CLI:
        return REDIS_SERVER, REDIS_CLI
    reason = "redis-server/redis-cli are not installed: tests that start their own Redis cannot run"
    if services_required():
        pytest.fail(f"EDU_REQUIRE_SERVICES=1 but {reason}", pytrace=False)
    pytest.skip(f"SKIPPED LOUDLY: {reason} (set EDU_REQUIRE_SERVICES=1 to fail instead)")


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(*, with_bus: bool = False) -> int:
    """A free TCP port (and, for cluster nodes, a free bus port at port + 10000)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if not with_bus or (port + 10000 <= 65535 and _port_free(port + 10000)):
            return port
    raise RuntimeError("no free port found")


def _die_with_parent() -> None:
    """In the server's process: SIGKILL it when its parent dies (Linux's PR_SET_PDEATHSIG).

    A process that is killed runs no teardown and no atexit: `make mutate` kills a worker
    whose mutant loops, and its servers must not outlive it.
    """
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One `redis-server` child process; `stop` kills it, `start` brings it back on its port."""

    def __init__(self, directory: Path, port: int | None = None, *, cluster: bool = False):
        self.server, self.cli = require_redis_binaries()
        self.directory = directory
        self.cluster = cluster
        self.port = port or free_port(with_bus=cluster)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 5.0) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [self.server, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        args += ["--dir", str(self.directory)]
        if self.cluster:
            args += ["--cluster-enabled", "yes"]
            args += ["--cluster-config-file", f"nodes-{self.port}.conf"]
        log = (self.directory / f"redis-{self.port}.log").open("ab")
        self.process = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        atexit.register(self.stop)  # even if the session dies before its teardown
        deadline = time.monotonic() + timeout
        while not _ping(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.01)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.process = None

    def cli_call(self, *args: str) -> str:
        done = subprocess.run(
            [self.cli, "-p", str(self.port), *args], capture_output=True, check=True, timeout=10
        )
        return done.stdout.decode()


class RedisClusterProcesses:
    """Three cluster-mode servers joined into one cluster (no replicas)."""

    def __init__(self, directory: Path, size: int = 3) -> None:
        self.nodes = [RedisServer(directory, cluster=True) for _ in range(size)]

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def start(self, timeout: float = 15.0) -> None:
        try:
            for node in self.nodes:
                node.start()
            addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
            self.nodes[0].cli_call(
                "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"
            )
            deadline = time.monotonic() + timeout
            while not all("cluster_state:ok" in n.cli_call("cluster", "info") for n in self.nodes):
                if time.monotonic() > deadline:
                    raise RuntimeError("the test cluster did not reach cluster_state:ok")
                time.sleep(0.05)
        except BaseException:
            self.stop()
            raise

    def flush(self) -> None:
        for node in self.nodes:
            node.cli_call("flushall")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
