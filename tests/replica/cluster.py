"""A PostgreSQL primary and a streaming hot standby of the tests' own, on free loopback ports.

Built from Debian's server binaries (`initdb`, `pg_basebackup -R`, `pg_ctl`), run as the
`postgres` OS user when the tests run as root, independent of the server on 5432, and
stopped (and deleted) at the end. Trust authentication on 127.0.0.1 only.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from attrs import frozen

_BIN_GLOB = "/usr/lib/postgresql/*/bin"


def server_binaries() -> Path | None:
    """The newest Debian PostgreSQL bin directory with initdb, or None."""
    found = sorted(glob.glob(_BIN_GLOB), key=lambda p: int(Path(p).parent.name))
    for path in reversed(found):
        if Path(path, "initdb").exists() and Path(path, "pg_basebackup").exists():
            return Path(path)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(command: list[str]) -> list[str]:
    """Run as the `postgres` OS user when we are root (the server refuses root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def _run(command: list[str], **options: object) -> None:
    subprocess.run(_as_postgres(command), check=True, capture_output=True, timeout=120, **options)  # type: ignore[call-overload]


@frozen
class Cluster:
    """Where the two servers listen (superuser `postgres`, trust auth), and their files."""

    primary_port: int
    standby_port: int
    binaries: Path
    root: Path

    def url(self, port: int, database: str, user: str = "postgres") -> str:
        return f"postgresql+asyncpg://{user}@127.0.0.1:{port}/{database}"

    def dsn(self, port: int, database: str, user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{port}/{database}"

    def stop_standby(self) -> None:
        """A fast shutdown: sessions are ended (reads in flight fail), nothing is lost."""
        _run([str(self.binaries / "pg_ctl"), "-D", str(self.root / "standby"), "-m", "fast",
              "-w", "stop"])  # fmt: skip

    def start_standby(self) -> None:
        _run([str(self.binaries / "pg_ctl"), "-D", str(self.root / "standby"),
              "-l", str(self.root / "standby.log"), "-w", "start"])  # fmt: skip


@contextmanager
def primary_and_standby() -> Iterator[Cluster]:
    """Start a primary and a hot standby streaming from it; stop and remove both at exit."""
    binaries = server_binaries()
    if binaries is None:
        raise RuntimeError("PostgreSQL server binaries (initdb, pg_basebackup) are not installed")
    root = Path(tempfile.mkdtemp(prefix="edu-replica-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    primary, standby = root / "primary", root / "standby"
    ports = _free_port(), _free_port()
    started: list[Path] = []
    try:
        _run([str(binaries / "initdb"), "-D", str(primary), "-U", "postgres", "--auth=trust",
              "--encoding=UTF8", "--locale=C.UTF-8"])  # fmt: skip
        settings = (
            f"port = {ports[0]}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{root}'\n"
            "wal_level = replica\nmax_wal_senders = 4\nhot_standby = on\nfsync = off\n"
        )
        with open(primary / "postgresql.conf", "a") as conf:
            conf.write(settings)
        with open(primary / "pg_hba.conf", "a") as hba:
            hba.write("host replication postgres 127.0.0.1/32 trust\n")
        _run([str(binaries / "pg_ctl"), "-D", str(primary), "-l", str(root / "primary.log"),
              "-w", "start"])  # fmt: skip
        started.append(primary)
        _run([str(binaries / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(ports[0]),
              "-U", "postgres", "-D", str(standby), "-R", "-X", "stream"])  # fmt: skip
        with open(standby / "postgresql.conf", "a") as conf:
            conf.write(f"port = {ports[1]}\n")
        _run([str(binaries / "pg_ctl"), "-D", str(standby), "-l", str(root / "standby.log"),
              "-w", "start"])  # fmt: skip
        started.append(standby)
        yield Cluster(*ports, binaries, root)
    finally:
        for data in reversed(started):
            subprocess.run(
                _as_postgres(
                    [str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]
                ),
                capture_output=True,
                timeout=60,
                check=False,
            )
        shutil.rmtree(root, ignore_errors=True)


def wait_until(predicate: object, timeout: float = 30.0) -> None:
    """Poll a callable until it returns true (a replica catching up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise TimeoutError("condition not met in time")
