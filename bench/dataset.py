"""The benchmark database: created, migrated as owner, loaded by COPY, dropped at the end.

Two roles, as in production: the owner (the admin URL's user) runs the migrations and the
COPY load; the application role `edu_bench_app` (LOGIN, NOSUPERUSER, NOBYPASSRLS) is what
edu-core and the same-shape raw asyncpg contender connect as, so row-level security applies
(both sign their tenant with `RLS_KEY`, which the migration stores).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import Table
from sqlalchemy.engine import make_url

from edu_infra.sqlalchemy.migrate import upgrade_async
from edu_infra.sqlalchemy.tables import (
    educational_contents,
    login_sessions,
    organizations,
    user_profiles,
    users,
)

APP_ROLE = os.environ.get("EDU_BENCH_APP_ROLE", "edu_bench_app")
ADMIN_URL = os.environ.get(
    "EDU_BENCH_ADMIN_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("EDU_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
#: EDU_RLS_KEY of the benchmark database (throwaway): stored by the migration, used by
#: edu-core and by `raw_tx`, which signs its tenant the same way.
RLS_KEY = "edu-bench-rls-key-0123456789abcdef0123456789abcdef"

ORGS = 10
USERS_PER_ORG = 5_000
CONTENT_PER_ORG = 300
SESSIONS_PER_ORG = 1_000
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
HASH = "fast$v2$1$" + "0" * 64
ROLES = ("student", "student", "student", "teacher", "teaching_assistant", "staff", "admin")
STATUSES = ("active", "active", "active", "pending", "suspended")


def dsn(url: str) -> str:
    """A SQLAlchemy URL as a plain libpq DSN for asyncpg."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class BenchDatabase:
    """Where the data lives and what it holds (ids the operations pick from)."""

    name: str
    owner_url: str
    app_url: str
    orgs: list[uuid.UUID] = field(default_factory=list)
    memory_org: uuid.UUID = field(default_factory=uuid.uuid4)
    #: empty too: the P4 import job's (the stream job reads back the memory org's rows only)
    import_org: uuid.UUID = field(default_factory=uuid.uuid4)
    users: dict[uuid.UUID, list[tuple[uuid.UUID, str]]] = field(default_factory=dict)

    @property
    def owner_dsn(self) -> str:
        return dsn(self.owner_url)

    @property
    def app_dsn(self) -> str:
        return dsn(self.app_url)


async def create(admin_url: str = ADMIN_URL) -> BenchDatabase:
    """A fresh database `edu_bench_<hex>`, migrated as owner, with the app role granted."""
    name = f"edu_bench_{uuid.uuid4().hex[:10]}"
    base = make_url(admin_url)
    owner_url = base.set(database=name).render_as_string(hide_password=False)
    app_url = base.set(database=name, username=APP_ROLE, password=None).render_as_string(
        hide_password=False
    )
    admin = await asyncpg.connect(dsn(admin_url))
    try:
        await admin.execute(
            f"""
            DO $$
            BEGIN
                IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                    CREATE ROLE "{APP_ROLE}" LOGIN NOSUPERUSER NOBYPASSRLS;
                END IF;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
            END
            $$
            """
        )
        await admin.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'")
    finally:
        await admin.close()
    await upgrade_async(owner_url, app_role=APP_ROLE, rls_key=RLS_KEY)
    return BenchDatabase(name=name, owner_url=owner_url, app_url=app_url)


async def drop(db: BenchDatabase, admin_url: str = ADMIN_URL) -> None:
    admin = await asyncpg.connect(dsn(admin_url))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')
    finally:
        await admin.close()


def _audit(created: datetime) -> dict[str, Any]:
    return {
        "created_at": created,
        "created_by": None,
        "updated_at": created,
        "updated_by": None,
        "deleted_at": None,
        "deleted_by": None,
        "version": 1,
    }


def _records(table: Table, rows: Iterator[dict[str, Any]]) -> list[tuple[Any, ...]]:
    names = [c.name for c in table.columns]
    return [tuple(row[n] for n in names) for row in rows]


def user_row(org: uuid.UUID, uid: uuid.UUID, i: int, tag: str, created: datetime) -> dict[str, Any]:
    verified = i % 3 != 0
    return {
        "organization_id": org,
        "id": uid,
        "email": f"u{i}.{tag}@example.org",
        "username": f"u{i}.{tag}",
        "hashed_password": HASH,
        "full_name": f"User {i}",
        "role": ROLES[i % len(ROLES)],
        "status": STATUSES[i % len(STATUSES)],
        "email_verified": verified,
        "email_verified_at": created if verified else None,
        "last_login_at": None,
        "failed_login_count": 0,
        "locked_until": None,
        "password_changed_at": None,
        **_audit(created),
    }


async def load(db: BenchDatabase) -> dict[str, int]:
    """10 organizations, 5,000 users each with a profile, content and login sessions (COPY),
    and two empty ones for the memory jobs."""
    conn = await asyncpg.connect(db.owner_dsn)
    counts: dict[str, int] = {}
    try:
        orgs = [uuid.uuid4() for _ in range(ORGS)]
        db.orgs = orgs
        org_rows = [
            {"id": o, "name": f"Org {k}", "slug": f"org-{k}", "status": "active", **_audit(EPOCH)}
            for k, o in enumerate([*orgs, db.memory_org, db.import_org])
        ]
        await _copy(conn, organizations, _records(organizations, iter(org_rows)), counts)
        user_records, profile_records, content_records, session_records = [], [], [], []
        now = datetime.now(UTC)
        for k, org in enumerate(orgs):
            members: list[tuple[uuid.UUID, str]] = []
            for i in range(USERS_PER_ORG):
                uid = uuid.uuid4()
                created = now - timedelta(days=60) + timedelta(seconds=i * 97 % 5_184_000)
                row = user_row(org, uid, i, f"o{k}", created)
                user_records.append(row)
                members.append((uid, row["email"]))
                profile_records.append(
                    {
                        "organization_id": org,
                        "id": uuid.uuid4(),
                        "user_id": uid,
                        "bio": None,
                        "skills": ["python"] if i % 2 else [],
                        "avatar_url": None,
                        "timezone": "UTC",
                        "locale": "en",
                        **_audit(created),
                    }
                )
            db.users[org] = members
            for j in range(CONTENT_PER_ORG):
                content_records.append(
                    {
                        "organization_id": org,
                        "id": uuid.uuid4(),
                        "title": f"Lesson {j}",
                        "slug": f"lesson-{j}",
                        "body": "text " * 40,
                        "content_type": "lesson",
                        "difficulty": "beginner",
                        "status": "published" if j % 2 else "draft",
                        "tags": ["python", "intro"],
                        "metadata": "{}",
                        "author_id": members[j][0],
                        "published_at": now if j % 2 else None,
                        **_audit(now),
                    }
                )
            for j in range(SESSIONS_PER_ORG):
                session_records.append(
                    {
                        "organization_id": org,
                        "id": uuid.uuid4(),
                        "user_id": members[j * 3][0],
                        "jti": uuid.uuid4().hex,
                        "token_hash": "0" * 64,
                        "ip_address": None,
                        "user_agent": None,
                        "expires_at": now + timedelta(days=(j % 10) - 3),
                        "revoked_at": now if j % 7 == 0 else None,
                        **_audit(now),
                    }
                )
        await _copy(conn, users, _records(users, iter(user_records)), counts)
        await _copy(conn, user_profiles, _records(user_profiles, iter(profile_records)), counts)
        await _copy(
            conn,
            educational_contents,
            _records(educational_contents, iter(content_records)),
            counts,
        )
        await _copy(conn, login_sessions, _records(login_sessions, iter(session_records)), counts)
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return counts


async def _copy(
    conn: asyncpg.Connection, table: Table, records: list[tuple[Any, ...]], counts: dict[str, int]
) -> None:
    await conn.copy_records_to_table(
        table.name, records=records, columns=[c.name for c in table.columns]
    )
    counts[table.name] = len(records)
