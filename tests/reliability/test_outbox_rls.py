"""The outbox under the threat model: raw SQL as the application role, in one tenant.

`outbox_events` carries the policy of every tenant table (migration 0005): a scoped
connection neither reads, changes, deletes nor inserts another organization's events, and
rewriting the tenant settings gains nothing. What it may do, write an event row for its
own organization, cannot make the relay speak for another one: a row whose event names
another organization is dead-lettered, never delivered.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from uuid import UUID

import asyncpg
import pytest
from attrs import define
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from edu_domain.model import Organization, UserDeleted
from edu_domain.services import EventDispatcher
from edu_infra.memory import ManualClock, RecordingNotifier, RecordingPublisher
from edu_infra.outbox import OutboxRelay, OutboxState, RelaySettings
from edu_infra.sqlalchemy import Database, DatabaseSettings, SqlUnitOfWorkFactory
from edu_infra.testing.harness import new_org, new_user
from tests.sql_harness import RLS_KEY, PostgresDatabase

pytestmark = pytest.mark.postgres
LATER = timedelta(hours=1)


@define
class Tenants:
    factory: SqlUnitOfWorkFactory
    mine: Organization
    theirs: Organization


async def _with_events(factory: SqlUnitOfWorkFactory, org: Organization, count: int) -> None:
    async with factory.unscoped() as uow:
        await uow.add(org)
        for _ in range(count):
            user = new_user(org)
            user.record(UserDeleted(organization_id=org.id, user_id=user.id, hard=False))
            await uow.add(user)
        await uow.commit()


@pytest.fixture
async def tenants(pg: PostgresDatabase) -> AsyncIterator[Tenants]:
    """Two organizations with pending events (nothing delivers them: inline is off)."""
    database = Database(DatabaseSettings(url=pg.app_url, rls_key=RLS_KEY))
    factory = SqlUnitOfWorkFactory(
        database,
        clock=ManualClock(),
        publisher=RecordingPublisher(),
        outbox=RelaySettings(inline=False),
    )
    mine, theirs = new_org(), new_org()
    await _with_events(factory, mine, 2)
    await _with_events(factory, theirs, 3)
    try:
        yield Tenants(factory, mine, theirs)
    finally:
        await database.dispose()


async def _owner_rows(pg: PostgresDatabase) -> list[tuple[object, ...]]:
    owner = await asyncpg.connect(pg.dsn(pg.owner_url))
    try:
        return sorted(tuple(r) for r in await owner.fetch("SELECT * FROM outbox_events"))
    finally:
        await owner.close()


async def test_a_scoped_connection_sees_and_changes_only_its_own_outbox_rows(
    tenants: Tenants, pg: PostgresDatabase
) -> None:
    before = await _owner_rows(pg)
    theirs = {"o": tenants.theirs.id}
    async with tenants.factory(tenant=tenants.mine.id) as uow:
        session = uow.session  # type: ignore[attr-defined]
        count = await session.execute(text("SELECT count(*) FROM outbox_events"))
        assert count.scalar_one() == 2
        targeted = await session.execute(
            text("SELECT count(*) FROM outbox_events WHERE organization_id = :o"), theirs
        )
        assert targeted.scalar_one() == 0
        touched = await session.execute(text("UPDATE outbox_events SET attempts = 99"))
        assert touched.rowcount == 2  # its own rows only
        gone = await session.execute(
            text("DELETE FROM outbox_events WHERE organization_id = :o"), theirs
        )
        assert gone.rowcount == 0
        await uow.rollback()
    assert await _owner_rows(pg) == before


async def test_a_scoped_connection_cannot_forge_or_move_an_event_into_another_tenant(
    tenants: Tenants, pg: PostgresDatabase
) -> None:
    before = await _owner_rows(pg)
    forged = text(
        "INSERT INTO outbox_events (organization_id, id, kind, payload, state, attempts,"
        " available_at, created_at) VALUES (:o, gen_random_uuid(), 'UserDeleted', '{}',"
        " 'pending', 0, now(), now())"
    )
    async with tenants.factory(tenant=tenants.mine.id) as uow:
        session = uow.session  # type: ignore[attr-defined]
        with pytest.raises(sa_exc.DBAPIError, match="row-level security"):
            await session.execute(forged, {"o": tenants.theirs.id})
    async with tenants.factory(tenant=tenants.mine.id) as uow:
        session = uow.session  # type: ignore[attr-defined]
        with pytest.raises(sa_exc.DBAPIError, match="row-level security"):
            await session.execute(
                text("UPDATE outbox_events SET organization_id = :o"), {"o": tenants.theirs.id}
            )
    assert await _owner_rows(pg) == before


async def test_rewriting_the_tenant_settings_shows_no_outbox_row(
    tenants: Tenants, pg: PostgresDatabase
) -> None:
    app = await asyncpg.connect(pg.dsn(pg.app_url))
    try:
        await app.execute(
            "SELECT set_config('app.unscoped', 'on', false),"
            " set_config('app.tenant_id', $1, false)",
            str(tenants.theirs.id),
        )
        assert await app.fetchval("SELECT count(*) FROM outbox_events") == 0
    finally:
        await app.close()


async def test_an_own_row_whose_event_names_another_organization_is_never_delivered(
    tenants: Tenants,
) -> None:
    mine, theirs = tenants.mine.id, tenants.theirs.id
    payload = {
        "organization_id": str(theirs),
        "user_id": str(UUID(int=7)),
        "email": "victim@example.org",
        "token": "attacker-chosen-token",
        "expires_at": "2030-01-01T00:00:00+00:00",
    }
    async with tenants.factory(tenant=mine) as uow:
        session = uow.session  # type: ignore[attr-defined]
        await session.execute(
            text(
                "INSERT INTO outbox_events (organization_id, id, kind, payload, state, attempts,"
                " available_at, created_at) VALUES (:o, :k, 'PasswordResetRequested',"
                " CAST(:p AS jsonb), 'pending', 0, '2000-01-01', now())"
            ),
            {"o": mine, "k": UUID(int=1), "p": json.dumps(payload)},
        )
        await uow.commit()
    notifier = RecordingNotifier()
    factory = tenants.factory
    relay = OutboxRelay(factory.outbox, EventDispatcher(notifier), clock=factory.clock)
    factory.clock.advance(LATER)  # type: ignore[attr-defined]
    await relay.drain()
    assert notifier.sent == []
    dead = {d.key: d for d in await factory.outbox.dead_letters()}
    assert dead[UUID(int=1)].last_error == (
        "UndeliverableEvent: PasswordResetRequested names another organization than its row"
    )
    assert dead[UUID(int=1)].attempts == 1  # dead at once: no retry can make it right
    counts = await factory.outbox.counts()
    assert counts == {OutboxState.PENDING: 0, OutboxState.DEAD: 1}


async def test_an_own_row_copying_another_tenants_key_never_touches_that_tenants_row(
    tenants: Tenants, pg: PostgresDatabase
) -> None:
    """Keys are unique per organization only: settling names the organization too."""
    owner = await asyncpg.connect(pg.dsn(pg.owner_url))
    try:
        their_key = await owner.fetchval(
            "SELECT id FROM outbox_events WHERE organization_id = $1 LIMIT 1", tenants.theirs.id
        )
    finally:
        await owner.close()
    async with tenants.factory(tenant=tenants.mine.id) as uow:
        session = uow.session  # type: ignore[attr-defined]
        await session.execute(
            text(
                "INSERT INTO outbox_events (organization_id, id, kind, payload, state, attempts,"
                " available_at, created_at) VALUES (:o, :k, 'UserDeleted', '{}', 'pending', 0,"
                " '2000-01-01', now())"
            ),
            {"o": tenants.mine.id, "k": their_key},
        )
        await uow.commit()
    publisher = RecordingPublisher()
    factory = tenants.factory
    relay = OutboxRelay(factory.outbox, publisher, clock=factory.clock)
    factory.clock.advance(LATER)  # type: ignore[attr-defined]
    await relay.drain()
    delivered = {(e.organization_id, e.key) for e in publisher.envelopes}
    assert (tenants.theirs.id, their_key) in delivered and len(delivered) == 5
    [dead] = await factory.outbox.dead_letters()
    assert (dead.organization_id, dead.key) == (tenants.mine.id, their_key)
    assert await factory.outbox.counts() == {OutboxState.PENDING: 0, OutboxState.DEAD: 1}
