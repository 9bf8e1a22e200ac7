"""Index use of the user reads, proven on PostgreSQL's plans at 100,000 users per tenant.

With 100,000 users in one organization (and 300,000 more over 300 others: a tenant that is
most of the table is best scanned whole, so its aggregates would rightly seq scan), loaded by COPY as the owner and ANALYZEd, the use cases
run once through the library while asyncpg's query logger records what they send (text
and bound values: the real statements, not copies). Each one that reads `users` is then
EXPLAINed as the application role inside a transaction opened exactly as a unit of work
opens it (BEGIN + the signed tenant), so row-level security's predicates are in the plan,
both with the bound values (custom plan) and as a generic plan (what a prepared statement
runs after its fifth execution), with EXPLAIN ANALYZE. No plan may scan `users`
sequentially, nor read more of it than the use case needs (a lookup a handful of rows, a
page about a page, an aggregate the tenant's matching rows): dropping an index they rely on
fails this test.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event

from edu_domain.model import UserStatus
from edu_domain.query import Query
from edu_domain.services import Deps, EduCore, Scope
from edu_infra.memory import FastHasher
from edu_infra.sqlalchemy import Database, DatabaseSettings, SqlUnitOfWorkFactory
from edu_infra.sqlalchemy.connection import TransactionSettings
from edu_infra.sqlalchemy.rls import IDENTITY_QUERY, ConnectionSigner
from edu_infra.sqlalchemy.tables import organizations, users
from edu_infra.system import SecretTokenGenerator, SystemClock, Uuid7Generator
from tests.sql_harness import RLS_KEY, PostgresDatabase, postgres_database

pytestmark = pytest.mark.postgres

BIG = 100_000
OTHERS, PER_OTHER = 300, 1_000
ROLES = ("student", "student", "student", "teacher", "teaching_assistant", "staff", "admin")
STATUSES = ("active", "active", "active", "pending", "suspended")
NOW = datetime.now(UTC)


def _user(org: uuid.UUID, i: int, tag: str) -> dict[str, Any]:
    created = NOW - timedelta(days=90) + timedelta(seconds=i * 61 % 7_776_000)
    return {
        "organization_id": org,
        "id": uuid.uuid4(),
        "email": f"u{i}.{tag}@example.org",
        "username": f"u{i}.{tag}",
        "hashed_password": "fast$v2$1$" + "0" * 64,
        "full_name": f"User {i}",
        "role": ROLES[i % len(ROLES)],
        "status": STATUSES[i % len(STATUSES)],
        "email_verified": i % 3 != 0,
        "email_verified_at": None,
        "last_login_at": None,
        "failed_login_count": 0,
        "locked_until": None,
        "password_changed_at": None,
        "created_at": created,
        "created_by": None,
        "updated_at": created,
        "updated_by": None,
        "deleted_at": NOW if i % 50 == 0 else None,
        "deleted_by": None,
        "version": 1,
    }


async def _load(pg: PostgresDatabase) -> tuple[uuid.UUID, list[dict[str, Any]]]:
    """The big organization (its id) and its users, by COPY as the owner, then ANALYZE."""
    big = uuid.uuid4()
    orgs = [big, *(uuid.uuid4() for _ in range(OTHERS))]
    owner = await asyncpg.connect(pg.dsn(pg.owner_url))
    try:
        org_rows = [
            (o, f"Org {k}", f"org-{k}", "active", NOW, None, NOW, None, None, None, 1)
            for k, o in enumerate(orgs)
        ]
        await owner.copy_records_to_table(
            "organizations", records=org_rows, columns=[c.name for c in organizations.columns]
        )
        rows = [_user(big, i, "big") for i in range(BIG)]
        rows += [_user(o, i, f"o{k}") for k, o in enumerate(orgs[1:]) for i in range(PER_OTHER)]
        names = [c.name for c in users.columns]
        await owner.copy_records_to_table(
            "users", records=[tuple(r[n] for n in names) for r in rows], columns=names
        )
        await owner.execute("ANALYZE")
    finally:
        await owner.close()
    return big, rows[:BIG]


class Captured:
    """What the engine's connections send: (query, bound values), in order."""

    def __init__(self, database: Database) -> None:
        self.sent: list[tuple[str, tuple[Any, ...]]] = []

        @event.listens_for(database.engine.sync_engine, "connect")
        def _log(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.driver_connection.add_query_logger(
                lambda record: self.sent.append((record.query, tuple(record.args or ())))
            )

    async def during(self, work: Awaitable[object]) -> list[tuple[str, tuple[Any, ...]]]:
        """The statements on `users` that `work` sent (transaction control left out)."""
        self.sent.clear()
        await work
        await asyncio.sleep(0)  # asyncpg calls its loggers with call_soon
        return [
            (query, args)
            for query, args in self.sent
            if " users" in query and not query.startswith(("BEGIN", "COMMIT", "ROLLBACK"))
        ]


@pytest.fixture
async def loaded(postgres_url: str) -> AsyncIterator[tuple[PostgresDatabase, uuid.UUID, Any]]:
    pg = await postgres_database(postgres_url)
    await pg.truncate()
    big, rows = await _load(pg)
    yield pg, big, rows
    await pg.truncate()


def _core(database: Database) -> EduCore:
    clock = SystemClock()
    return EduCore(
        Deps(
            uow=SqlUnitOfWorkFactory(database, clock=clock),
            clock=clock,
            ids=Uuid7Generator(),
            tokens=SecretTokenGenerator(),
            hasher=FastHasher(),
        )
    )


async def _use_cases(
    database: Database, big: uuid.UUID, rows: list[dict[str, Any]]
) -> dict[str, list[tuple[str, tuple[Any, ...]]]]:
    core, scope, log = _core(database), Scope.system(big), Captured(database)
    live = [r for r in rows if r["deleted_at"] is None]
    first = await core.users.find(scope, Query().order_by("created_at", "id").after(None, 20))
    cases: dict[str, Callable[[], Awaitable[object]]] = {
        "get by id": lambda: core.users.get(scope, live[12_345]["id"]),
        "get by email": lambda: core.users.get_by_email(scope, live[54_321]["email"]),
        "find page": lambda: core.users.find(
            scope,
            Query.where(status=UserStatus.ACTIVE).order_by("-created_at", "-id").page(40, 20),
        ),
        "keyset page": lambda: core.users.find(
            scope, Query().order_by("created_at", "id").after(first.next_cursor, 20)
        ),
        "count": lambda: core.users.count(scope, Query.where(status=UserStatus.ACTIVE)),
        "statistics": lambda: core.users.statistics(scope),
    }
    return {name: await log.during(case()) for name, case in cases.items()}


def _scans_of_users(plan: Any) -> tuple[list[str], int]:
    """The plan's scan nodes on `users` (their types) and how many rows they read in all:
    rows returned plus rows removed by a filter or an index recheck, over every loop (the
    counts EXPLAIN ANALYZE prints are per loop)."""
    kinds: list[str] = []
    read = 0
    stack = [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        stack.extend(node.get("Plans", ()))
        if node.get("Relation Name") != "users":
            continue
        kinds.append(node["Node Type"])
        per_loop = (
            node.get("Actual Rows", 0)
            + node.get("Rows Removed by Filter", 0)
            + node.get("Rows Removed by Index Recheck", 0)
        )
        read += round(per_loop * node.get("Actual Loops", 1))
    return kinds, read


def _literal(value: Any) -> str:
    """A bound value as an SQL literal for EXECUTE (EXPLAIN takes no bind parameters)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text.replace("'", "''") + "'"


async def _explain(
    pg: PostgresDatabase, big: uuid.UUID, statements: list[tuple[str, tuple[Any, ...]]]
) -> list[tuple[str, str, list[str], int, str]]:
    """(mode, query, scan node types on users, rows they read, plan) for each statement,
    custom and generic, run (EXPLAIN ANALYZE) as the app role with the tenant proven for
    the transaction as a unit of work proves it (BEGIN READ ONLY: nothing is written)."""
    conn = await asyncpg.connect(pg.dsn(pg.app_url))
    out = []
    try:
        signer = ConnectionSigner.from_identity(
            await conn.fetchrow(IDENTITY_QUERY), RLS_KEY.encode()
        )
        await conn.execute(TransactionSettings(read_only=True).begin_query(*signer.enter(big)))
        for number, (query, args) in enumerate(statements):
            await conn.execute(f"PREPARE edu_plan_{number} AS {query}")
            values = ", ".join(_literal(value) for value in args)
            execute = (
                f"EXECUTE edu_plan_{number}({values})" if args else f"EXECUTE edu_plan_{number}"
            )
            for mode in ("custom", "generic"):
                await conn.execute(f"SET LOCAL plan_cache_mode = force_{mode}_plan")
                plan = json.loads(await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {execute}"))
                kinds, read = _scans_of_users(plan)
                out.append((mode, query, kinds, read, json.dumps(plan, indent=1)))
        await conn.execute("ROLLBACK")
    finally:
        await conn.close()
    return out


async def test_no_user_read_scans_a_100k_user_tenant_sequentially(
    loaded: tuple[PostgresDatabase, uuid.UUID, list[dict[str, Any]]],
) -> None:
    pg, big, rows = loaded
    database = Database(
        DatabaseSettings(url=pg.app_url, pool_size=1, max_overflow=0, rls_key=RLS_KEY)
    )
    try:
        sent = await _use_cases(database, big, rows)
    finally:
        await database.dispose()
    for name, statements in sent.items():  # every use case was observed reading users
        assert statements, f"{name}: no statement on users was captured"
    live = [r for r in rows if r["deleted_at"] is None]
    active = sum(r["status"] == "active" for r in live)
    #: rows a plan may read for each use case: a handful for a lookup, about a page (plus
    #: what the status filter skips) for a page, the matching rows of the tenant for an
    #: aggregate; a sequential scan reads all 400,000, a wrong index far more than a page
    budgets = {
        "get by id": 5,
        "get by email": 5,
        "find page": 500,
        "keyset page": 500,
        "count": round(active * 1.1),
        "statistics": round(len(live) * 1.1),
    }
    problems = []
    for name, statements in sent.items():
        for mode, query, kinds, read, plan in await _explain(pg, big, statements):
            if "Seq Scan" in kinds or read > budgets[name]:
                problems.append(
                    f"{name} ({mode}): {kinds} read {read:,} rows of users"
                    f" (at most {budgets[name]:,})\n{query}\n{plan}"
                )
    assert not problems, "\n\n".join(problems)
