"""A process killed between a commit and the dispatch of its mail: the mail still goes out,
once, after a restart.

The first process (a service built by `open_core`, its relay loop running) registers a user
in a transaction whose after-commit callback signals and hangs, so the commit is durable
and the mail not yet dispatched; the test then SIGKILLs it. Nothing has reached the SMTP
server (a real one, `tests/mail_server.py`). A restarted service delivers the mail from the
outbox; `edu relay --once` afterwards finds nothing more to send. The mail's Message-ID is
the event's idempotency key and its link's token verifies the user.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from edu_domain.model import User
from edu_domain.services import Scope
from edu_infra.container import open_core
from tests.mail_server import MailServer, parts, temp_folder, token_from_link
from tests.reliability.outbox_child import EMAIL
from tests.sql_harness import fresh_sqlite_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def mail_server() -> Iterator[MailServer]:
    server = MailServer(temp_folder()).start()
    yield server
    server.stop()


def _env(url: str, server: MailServer, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDU_")}
    return {
        **env,
        "EDU_DATABASE_URL": url,
        "EDU_CACHE_ENABLED": "false",
        "EDU_ARGON2_TIME_COST": "1",
        "EDU_ARGON2_MEMORY_KIB": "8",
        "EDU_ARGON2_PARALLELISM": "1",
        **server.settings(),
        **extra,
    }


def _outbox_rows(url: str) -> list[tuple[UUID, str, int]]:
    path = url.removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT id, state, attempts FROM outbox_events").fetchall()
    return [(UUID(key), state, attempts) for key, state, attempts in rows]


def _wait_for(marker: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert process.poll() is None, process.communicate()[0].decode()
        assert time.monotonic() < deadline, "the first process never committed"
        time.sleep(0.05)


def test_a_mail_committed_before_a_sigkill_is_delivered_once_after_a_restart(
    mail_server: MailServer, tmp_path: Path
) -> None:
    url = asyncio.run(fresh_sqlite_url())
    marker = tmp_path / "committed"
    first = subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.outbox_child", "commit-then-hang", str(marker)],
        cwd=ROOT,
        env=_env(url, mail_server, EDU_OUTBOX_POLL_SECONDS="3600"),  # its loop stays idle
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for(marker, first)
        first.send_signal(signal.SIGKILL)
    finally:
        first.kill()
        first.wait()
    assert first.returncode == -signal.SIGKILL
    assert mail_server.mailbox.messages == []  # killed between the commit and the dispatch
    [(key, state, attempts)] = _outbox_rows(url)
    assert (state, attempts) == ("pending", 0)

    # the restart: a service on the same database (this process), its relay loop running
    user = asyncio.run(_restart_and_verify(url, mail_server, UUID(marker.read_text())))
    assert user.email == EMAIL and user.email_verified
    worker = subprocess.run(
        [sys.executable, "-m", "edu_infra", "relay", "--once"],
        cwd=ROOT,
        env=_env(url, mail_server),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert worker.returncode == 0, worker.stderr.decode()
    assert worker.stdout.decode().strip() == "relayed: 0 handled; pending: 0, dead: 0"
    assert _outbox_rows(url) == []

    [mail] = mail_server.mailbox.messages
    assert mail["To"] == EMAIL
    assert mail["Message-ID"] == f"<{key}@school.example.org>"


async def _restart_and_verify(url: str, server: MailServer, org_id: UUID) -> User:
    """Start edu-core again; once its relay emptied the outbox, the mail's link verifies."""
    settings = {k: v for k, v in _env(url, server).items() if k.startswith("EDU_")}
    async with open_core(settings) as (core, _):
        for _ in range(600):  # a bounded wait (about a minute) for the relay's first round
            if server.mailbox.messages and not _outbox_rows(url):
                break
            await asyncio.sleep(0.1)
        [mail] = server.mailbox.messages
        text, _ = parts(mail)
        return await core.verification.verify_email(Scope(org_id), token_from_link(text))
