"""What the query compiler must get right per dialect, beyond the shared contract suite."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import text

from edu_domain.model import EducationalContent, Organization, User, UserStatus
from edu_domain.query import F, Query
from edu_infra.sqlalchemy import Database, SqlUnitOfWorkFactory
from edu_infra.sqlalchemy.types import UtcDateTime
from edu_infra.testing.harness import Harness, new_content, new_user


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def harness(request: pytest.FixtureRequest) -> Harness:
    name = "sqlite_harness" if request.param == "sqlite" else "pg_harness"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


async def test_startswith_is_case_sensitive_and_takes_wildcards_literally(
    harness: Harness,
) -> None:
    org = await harness.make_org()
    names = ["100% sure", "100 percent", "a_b", "axb", "Abc", "abc"]
    users = [await harness.make_user(org, full_name=name) for name in names]
    by_name = {u.full_name: u.id for u in users}

    async def matching(prefix: str) -> set[str]:
        async with harness.uow(org) as uow:
            page = await uow.find(User, Query.where(F("full_name").startswith(prefix)))
        return {u.full_name or "" for u in page}

    assert await matching("100%") == {"100% sure"}
    assert await matching("a_") == {"a_b"}
    assert await matching("ab") == {"abc"}
    assert await matching("Ab") == {"Abc"}
    assert set(by_name) == set(names)


async def test_icontains_folds_non_ascii_letters(harness: Harness) -> None:
    org = await harness.make_org()
    await harness.make_user(org, full_name="ÉMILE ZOLA")
    await harness.make_user(org, full_name="Émile Durkheim")
    await harness.make_user(org, full_name="Emile Cohl")
    async with harness.uow(org) as uow:
        page = await uow.find(User, Query.where(F("full_name").icontains("émile")))
    assert {u.full_name for u in page} == {"Émile Durkheim", "ÉMILE ZOLA"}


async def test_datetimes_with_any_offset_compare_as_instants(harness: Harness) -> None:
    org = await harness.make_org()
    base = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    plus_two = timezone(timedelta(hours=2))
    early = await harness.make_user(org, last_login_at=base.astimezone(plus_two))
    late = await harness.make_user(org, last_login_at=base + timedelta(microseconds=1))
    async with harness.uow(org) as uow:
        after = await uow.find(User, Query.where(F("last_login_at").gt(base)))
        stored = await uow.require(User, early.id)
    assert [u.id for u in after] == [late.id]
    assert stored.last_login_at == base
    assert stored.last_login_at is not None and stored.last_login_at.tzinfo is UTC


async def test_sqlite_stores_fixed_width_utc_text(sqlite_harness: Harness) -> None:
    org = await sqlite_harness.make_org()
    await sqlite_harness.make_user(org)
    database: Database = sqlite_harness.factory.database  # type: ignore[attr-defined]
    async with database.engine.connect() as conn:
        raw = (await conn.execute(text("SELECT created_at FROM users"))).scalar_one()
    assert raw == UtcDateTime.to_sqlite(sqlite_harness.clock.now())
    assert len(raw) == 26


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("query", "index"),
    [
        (Query.where(email="ann@example.org"), "uq_users_email"),
        (Query.where(status="active").order_by("id"), "ix_users_status"),
        (Query().order_by("created_at").page(0, 20), "ix_users_created"),
    ],
)
async def test_postgres_tenant_queries_use_their_indexes_under_rls(
    pg_harness: Harness, pg_owner: Database, query: Query, index: str
) -> None:
    org = await _seed(pg_harness, pg_owner)
    async with pg_harness.uow(org) as uow:
        plan = await _plan(uow, lambda: uow.find(User, query))
    assert index in plan, plan


@pytest.mark.postgres
async def test_postgres_tag_containment_uses_the_gin_index_without_rls(
    pg_harness: Harness, pg_owner: Database
) -> None:
    """`@>` is not LEAKPROOF, so under RLS the planner filters instead (see compiler docs)."""
    org = await _seed(pg_harness, pg_owner)
    query = Query.where(F("tags").contains_all(["python", "sql"]))
    owner = SqlUnitOfWorkFactory(pg_owner)
    async with owner(tenant=org.id) as uow:
        plan = await _plan(uow, lambda: uow.find(EducationalContent, query))
    assert "ix_educational_contents_tags" in plan, plan


async def _seed(harness: Harness, owner: Database) -> Organization:
    """Enough rows, spread over two tenants and statuses, for the planner to prefer indexes."""
    org, other = await harness.make_org(), await harness.make_org()
    statuses = list(UserStatus)
    for tenant in (org, other):
        users = [new_user(tenant, status=statuses[i % len(statuses)]) for i in range(400)]
        author = users[0]
        contents = [
            new_content(tenant, author, tags=("python", "sql") if i % 100 == 0 else (f"t{i}",))
            for i in range(400)
        ]
        async with harness.uow(tenant) as uow:
            await uow.add_all([*users, *contents])
            await uow.commit()
    async with owner.engine.begin() as conn:
        await conn.execute(text("ANALYZE"))
    return org


async def _plan(uow: Any, run: Callable[[], Awaitable[object]]) -> str:
    """The EXPLAIN output of the statement `run` sends, with its real arguments.

    Reads go to asyncpg directly (not through SQLAlchemy's cursor), so the statement is
    captured by asyncpg's own query logger on the unit of work's connection.
    """
    connection = await uow.session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    captured: list[tuple[str, Any]] = []

    def capture(record: Any) -> None:
        if "FROM" in record.query and not record.query.startswith("BEGIN"):
            captured.append((record.query, record.args))

    driver.add_query_logger(capture)
    try:
        await run()
        await asyncio.sleep(0)  # asyncpg calls its query loggers with call_soon
    finally:
        driver.remove_query_logger(capture)
    statement, args = captured[-1]
    await driver.execute("SET LOCAL enable_seqscan = off")
    rows = await driver.fetch(f"EXPLAIN {statement}", *args)
    return "\n".join(row[0] for row in rows)


async def test_metadata_numbers_keep_their_type_through_the_database(harness: Harness) -> None:
    org = await harness.make_org()
    author = await harness.make_user(org)
    numbers = {
        "float_big": 6.456965792496969e212,
        "float_integral": 1e16,
        "float_five": 5.0,
        "float_small": 1e-7,
        "int_big": 2**62,
        "nested": [{"f": 2e20, "i": -(2**63)}],
    }
    content = await harness.make_content(org, author, metadata=numbers)
    async with harness.uow(org) as uow:
        stored = await uow.require(EducationalContent, content.id)
        stored_values = dict(stored.metadata)
    assert stored_values == numbers
    assert {k: type(v) for k, v in stored_values.items()} == {
        k: type(v) for k, v in numbers.items()
    }
    assert type(stored_values["nested"][0]["f"]) is float


async def test_keyset_pages_continue_after_boolean_and_null_order_values(
    harness: Harness,
) -> None:
    org = await harness.make_org()
    when = harness.clock.now()
    made = [
        await harness.make_user(
            org, email_verified=i % 2 == 0, last_login_at=when if i % 3 else None
        )
        for i in range(7)
    ]
    query = Query().order_by("-email_verified", "last_login_at")
    async with harness.uow(org) as uow:
        everything = [u.id for u in await uow.find(User, query)]
        paged: list[object] = []
        cursor = None
        while True:
            page = await uow.find(User, query.after(cursor, 2))
            paged.extend(u.id for u in page)
            cursor = page.next_cursor
            if cursor is None:
                break
    assert paged == everything
    assert sorted(everything) == sorted(u.id for u in made)
