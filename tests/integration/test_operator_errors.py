"""`edu` tells an operator what is wrong in one line, with the setting or extra to change.

Each case runs the real command in a subprocess and checks: one line on stderr naming the
cause and the fix, no traceback, the documented exit code (1: not ready, 2: configuration),
and that `edu health` never creates a SQLite file.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import REDIS_URL
from tests.mail_server import free_port
from tests.sql_harness import APP_ROLE, RLS_KEY, PostgresDatabase, ensure_role

#: Every library an extra brings: blocked to play a bare `pip install edu-core`.
BLOCKER = """
import sys
class _Bare:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
BLOCKED = set(sys.argv[1].split(","))
sys.argv = ["edu", *sys.argv[2:]]
sys.meta_path.insert(0, _Bare())
from edu_infra.cli import main
raise SystemExit(main())
"""


async def edu(
    *args: str, env: dict[str, str], cwd: Path | None = None, blocked: str = ""
) -> tuple[int, str, str]:
    """Run `edu ARGS` with exactly these EDU_* settings: (exit code, stdout, stderr)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EDU_")}
    command = [sys.executable, "-m", "edu_infra", *args]
    if blocked:
        command = [sys.executable, "-c", BLOCKER, blocked, *args]
    process = await asyncio.create_subprocess_exec(
        *command,
        env={**clean, "PYTHONPATH": os.pathsep.join(sys.path), **env},
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


EXTRA_MODULES = "dependency_injector,pwdlib,argon2,orjson,cattrs,sqlalchemy,aiosqlite,asyncpg"


async def test_a_bare_install_names_the_extras_to_install(tmp_path: Path) -> None:
    code, _, err = await edu("health", env={}, cwd=tmp_path, blocked=EXTRA_MODULES)
    line = one_line(err)
    assert code == 2
    assert "pip install 'edu-core[container,security,codec,sqlite]'" in line, line
    assert not (tmp_path / "edu.db").exists()


async def test_an_smtp_host_without_the_smtp_extra_says_so(tmp_path: Path) -> None:
    settings = {
        "EDU_DATABASE_URL": "memory://",
        "EDU_SMTP_HOST": "127.0.0.1",
        "EDU_SMTP_SENDER": "a@example.org",
        "EDU_MAIL_VERIFY_URL": "https://a/v/{token}",
        "EDU_MAIL_RESET_URL": "https://a/r/{token}",
    }
    code, _, err = await edu("health", env=settings, cwd=tmp_path, blocked="aiosmtplib")
    assert code == 2 and "pip install 'edu-core[smtp]'" in one_line(err)


async def test_health_never_creates_a_sqlite_file(tmp_path: Path) -> None:
    code, out, err = await edu("health", env={}, cwd=tmp_path)
    assert code == 1, out + err
    assert f"database: MISSING (no SQLite file at {tmp_path / 'edu.db'}" in out
    assert not (tmp_path / "edu.db").exists()
    assert "Traceback" not in err


async def test_create_org_on_a_missing_or_unmigrated_sqlite_file_says_run_migrate(
    tmp_path: Path,
) -> None:
    env = {"EDU_ADMIN_PASSWORD": "a long password"}
    args = ("create-org", "School", "--admin-email", "a@example.org", "--admin-username", "adm")
    code, _, err = await edu(*args, env=env, cwd=tmp_path)
    assert code == 1 and "run `edu migrate` first" in one_line(err)
    assert not (tmp_path / "edu.db").exists()

    (tmp_path / "edu.db").touch()  # a file, but no schema
    code, out, err = await edu("health", env={}, cwd=tmp_path)
    assert code == 1 and "database: NOT MIGRATED" in out and "run `edu migrate`" in out
    code, _, err = await edu(*args, env=env, cwd=tmp_path)
    assert code == 1 and "is not migrated" in one_line(err) and "edu migrate" in err

    code, out, _ = await edu("migrate", env={}, cwd=tmp_path)
    assert code == 0, out
    code, out, err = await edu(*args, env=env, cwd=tmp_path)
    assert code == 0 and "organization school" in out, err
    code, out, _ = await edu("health", env={}, cwd=tmp_path)
    assert code == 0 and "database: ok" in out


@pytest.mark.postgres
async def test_an_unreachable_server_is_one_line_for_every_command(
    postgres_url: str, tmp_path: Path
) -> None:
    url = f"postgresql+asyncpg://edu:secret-pw@127.0.0.1:{free_port()}/edu"
    env = {"EDU_DATABASE_URL": url, "EDU_RLS_KEY": RLS_KEY, "EDU_ADMIN_PASSWORD": "long enough"}
    code, _, err = await edu("migrate", env=env, cwd=tmp_path)
    line = one_line(err)
    assert code == 1 and "cannot reach the database" in line
    assert "check EDU_DATABASE_URL" in line and "secret-pw" not in line
    assert "EDU_MIGRATION_DATABASE_URL" not in line  # not set: the variable used is named
    code, _, err = await edu("migrate", env={**env, "EDU_MIGRATION_DATABASE_URL": url})
    line = one_line(err)
    assert code == 1 and "check EDU_MIGRATION_DATABASE_URL" in line
    code, out, err = await edu("health", env=env, cwd=tmp_path)
    assert code == 1 and "database: UNAVAILABLE (cannot reach the database" in out
    assert "Traceback" not in err and "secret-pw" not in out + err


@pytest.fixture
async def fresh_postgres(postgres_url: str) -> AsyncIterator[PostgresDatabase]:
    """An empty database whose public schema only its owner may create in."""
    database = PostgresDatabase(postgres_url)
    database.name = f"edu_operr_{uuid.uuid4().hex[:10]}"
    base = make_url(postgres_url)
    database.owner_url = base.set(database=database.name).render_as_string(False)
    database.app_url = base.set(
        database=database.name, username=APP_ROLE, password=None
    ).render_as_string(False)
    admin = await asyncpg.connect(database.dsn(postgres_url))
    try:
        await ensure_role(admin, APP_ROLE)
        await admin.execute(f'CREATE DATABASE "{database.name}"')
    finally:
        await admin.close()
    owner = await asyncpg.connect(database.dsn(database.owner_url))
    try:
        await owner.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    finally:
        await owner.close()
    yield database
    admin = await asyncpg.connect(database.dsn(postgres_url))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.mark.postgres
async def test_migrating_as_the_application_role_names_the_migration_setting(
    fresh_postgres: PostgresDatabase, tmp_path: Path
) -> None:
    env = {"EDU_DATABASE_URL": fresh_postgres.app_url, "EDU_RLS_KEY": RLS_KEY}
    code, out, err = await edu("migrate", env=env, cwd=tmp_path)
    line = one_line(err)
    assert code == 1, out
    assert "permission denied" in line and "set EDU_MIGRATION_DATABASE_URL" in line

    code, out, err = await edu("health", env={**env, "EDU_REDIS_URL": REDIS_URL}, cwd=tmp_path)
    assert code == 1 and "database: NOT MIGRATED" in out and "Traceback" not in err

    owner = {**env, "EDU_MIGRATION_DATABASE_URL": fresh_postgres.owner_url}
    owner["EDU_DATABASE_APP_ROLE"] = APP_ROLE
    code, out, err = await edu("migrate", env=owner, cwd=tmp_path)
    assert code == 0, err
    code, out, err = await edu("health", env=env, cwd=tmp_path)
    assert code == 0 and "database: ok" in out and "row-level security key: ok" in out, out + err
