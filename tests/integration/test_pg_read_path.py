"""The PostgreSQL read path: what a unit of work sends, statement by statement.

Reads run on the driver (asyncpg), so the statements are observed with asyncpg's query
logger, attached to every connection the engine opens.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event

from edu_domain.errors import ConcurrencyConflict
from edu_domain.model import Organization, User, UserRole
from edu_domain.query import F, Query
from edu_domain.services import Deps, EduCore, Scope
from edu_infra.memory import FastHasher
from edu_infra.sqlalchemy import Database, DatabaseSettings
from edu_infra.system import SecretTokenGenerator, Uuid7Generator
from edu_infra.testing.harness import Harness
from tests.integration.conftest import make_harness
from tests.sql_harness import RLS_KEY, PostgresDatabase

pytestmark = pytest.mark.postgres


class Logged:
    """Every query the engine's connections send, in order."""

    def __init__(self, database: Database) -> None:
        self.queries: list[str] = []

        @event.listens_for(database.engine.sync_engine, "connect")
        def _log(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.driver_connection.add_query_logger(
                lambda record: self.queries.append(record.query)
            )

    async def take(self) -> list[str]:
        await asyncio.sleep(0)  # asyncpg calls its loggers with call_soon
        taken, self.queries = self.queries, []
        return taken


@pytest.fixture
async def logged(pg: PostgresDatabase) -> AsyncIterator[tuple[Harness, Logged]]:
    database = Database(
        DatabaseSettings(url=pg.app_url, pool_size=1, max_overflow=0, rls_key=RLS_KEY)
    )
    log = Logged(database)
    yield make_harness("postgres", database), log
    await database.dispose()


async def _org_with_users(harness: Harness) -> tuple[Organization, list[User]]:
    org = await harness.make_org()
    users = [await harness.make_user(org, role=role) for role in (UserRole.STUDENT,) * 3]
    return org, users


async def test_a_get_is_three_round_trips_begin_select_rollback(
    logged: tuple[Harness, Logged],
) -> None:
    harness, log = logged
    org, users = await _org_with_users(harness)
    await log.take()
    async with harness.uow(org) as uow:
        found = await uow.get(User, users[0].id)
    assert found is not None and found.id == users[0].id
    sent = await log.take()
    assert len(sent) == 3, sent
    assert sent[0].startswith("BEGIN; SELECT set_config('search_path', '\"public\", pg_temp'")
    assert f"edu_enter('{org.id}', '" in sent[0]
    assert sent[1].startswith("SELECT users.") and "users.organization_id = $" in sent[1]
    assert "users.deleted_at IS NULL" in sent[1]
    assert sent[2] == "ROLLBACK"


async def test_statistics_is_one_statement(logged: tuple[Harness, Logged]) -> None:
    harness, log = logged
    org, _ = await _org_with_users(harness)
    core = EduCore(
        Deps(
            uow=harness.factory,
            clock=harness.clock,
            ids=Uuid7Generator(),
            tokens=SecretTokenGenerator(),
            hasher=FastHasher(),
        )
    )
    await log.take()
    stats = await core.users.statistics(Scope.system(org.id))
    sent = await log.take()
    reads = [q for q in sent if q not in ("COMMIT", "ROLLBACK") and not q.startswith("BEGIN")]
    assert len(reads) == 1, sent
    assert "login_sessions" in reads[0] and "GROUP BY" in reads[0]
    assert stats.total == 3


async def test_a_query_shape_compiles_once_and_runs_with_any_values(
    logged: tuple[Harness, Logged],
) -> None:
    harness, log = logged
    org, users = await _org_with_users(harness)
    async with harness.uow(org) as uow:
        stored = await uow.require(User, users[1].id)
        stored.full_name = "Zed"
        await uow.commit()
    await log.take()
    async with harness.uow(org) as uow:
        zed = await uow.find(User, Query.where(F("full_name").eq("Zed")))
        nobody = await uow.find(User, Query.where(F("full_name").eq("Nobody")))
    sent = await log.take()
    selects = [q for q in sent if q.startswith("SELECT users.")]
    assert len(selects) == 2 and selects[0] == selects[1]  # one SQL text, two values
    assert [u.id for u in zed] == [users[1].id]
    assert list(nobody) == []


async def test_an_entity_the_read_path_loaded_is_written_when_changed(
    logged: tuple[Harness, Logged],
) -> None:
    harness, _ = logged
    org, users = await _org_with_users(harness)
    async with harness.uow(org) as uow:
        user = await uow.require(User, users[0].id)
        before = user.version
        user.full_name = "Changed"
        page = await uow.find(User, Query.where(F("full_name").eq("Changed")))  # autoflush
        assert [u.id for u in page] == [user.id] and page.items[0] is user
        await uow.commit()
    async with harness.uow(org) as uow:
        again = await uow.require(User, users[0].id)
    assert again.full_name == "Changed"
    assert again.version == before + 1


async def test_a_change_to_a_loaded_entity_is_one_versioned_update(
    logged: tuple[Harness, Logged],
) -> None:
    harness, log = logged
    org, users = await _org_with_users(harness)
    await log.take()
    async with harness.uow(org) as uow:
        user = await uow.require(User, users[0].id)
        user.full_name = "Renamed"
        await uow.commit()
    sent = await log.take()
    assert len(sent) == 4, sent  # BEGIN+settings, SELECT, UPDATE, COMMIT
    assert sent[2].startswith("UPDATE users SET") and "version = $" in sent[2]
    assert sent[3] == "COMMIT"
    assert harness.listener.changes[-1].kind.value == "update"


async def test_a_change_that_lost_a_race_is_a_concurrency_conflict(pg_harness: Harness) -> None:
    org, users = await _org_with_users(pg_harness)
    async with pg_harness.uow(org) as late, pg_harness.uow(org) as early:
        slow = await late.require(User, users[0].id)
        fast = await early.require(User, users[0].id)
        fast.full_name = "First"
        await early.commit()
        slow.full_name = "Second"
        with pytest.raises(ConcurrencyConflict):
            await late.commit()
    async with pg_harness.uow(org) as uow:
        stored = await uow.require(User, users[0].id)
    assert (stored.full_name, stored.version) == ("First", users[0].version + 1)
