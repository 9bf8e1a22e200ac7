"""The outbox under failure: a notifier down for a while, one down for good, two relays.

No test waits on the wall clock: the relay's clock is a `ManualClock` moved past each
backoff, and every round is run by hand (`run_once`), so each assertion is on an outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from uuid import UUID

import asyncpg
import pytest

from edu_domain.model import User, UserDeleted
from edu_domain.ports import Envelope
from edu_domain.services import Scope
from edu_infra.memory import ManualClock
from edu_infra.outbox import OutboxRelay, OutboxState, RelaySettings
from edu_infra.sqlalchemy import Database, DatabaseSettings, SqlUnitOfWorkFactory
from edu_infra.testing.harness import new_org, new_user
from tests.reliability.outbox_support import mail_stack
from tests.sql_harness import RLS_KEY, PostgresDatabase

ADAPTERS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
LATER = timedelta(hours=1)


@pytest.mark.parametrize("kind", ADAPTERS)
async def test_a_notifier_down_for_a_while_loses_no_mail_and_sends_it_once(kind: str) -> None:
    async with mail_stack(kind) as stack:
        org = await stack.core.organizations.create("School")
        stack.mailer.failures = 4
        await stack.register(org)  # the use case succeeds: its mail waits in the outbox
        assert stack.mailer.sent == [] and await stack.counts() == (1, 0)
        stored = await stack.stored_payloads()
        rounds = 0
        while await stack.counts() != (0, 0):
            rounds += 1
            assert rounds <= 10, "the relay never delivered the mail"
            stack.clock.advance(LATER)
            await stack.relay.run_once()
        [mail] = stack.mailer.sent
        assert stack.mailer.refused == 4  # the inline attempt and three of the relay's
        assert mail.idempotency_key is not None
        assert "ada@example.org" in stored
        if kind != "memory":  # at rest, the row holds the token sealed, never the token
            assert mail.token not in stored
        user = await stack.core.users.get_by_email(Scope.system(org.id), "ada@example.org")
        assert user is not None and not user.email_verified
        verified = await stack.core.verification.verify_email(Scope(org.id), mail.token)
        assert verified.id == user.id and verified.email_verified


@pytest.mark.parametrize("kind", ADAPTERS)
async def test_a_mail_failing_max_attempts_times_is_dead_lettered_and_a_retry_delivers_it(
    kind: str,
) -> None:
    async with mail_stack(kind, RelaySettings(max_attempts=3)) as stack:
        org = await stack.core.organizations.create("School")
        stack.mailer.failures = 100
        await stack.register(org)
        for _ in range(5):
            stack.clock.advance(LATER)
            await stack.relay.run_once()
        assert stack.mailer.refused == 3
        assert await stack.counts() == (0, 1)
        [dead] = await stack.relay.store.dead_letters()
        assert dead.kind == "EmailVerificationRequested" and dead.attempts == 3
        assert dead.last_error is not None and dead.last_error.startswith("UnavailableError: ")
        stack.mailer.failures = 0
        assert await stack.relay.store.requeue(now=stack.clock.now()) == 1
        await stack.relay.run_once()
        [mail] = stack.mailer.sent
        assert mail.idempotency_key == str(dead.key)
        assert await stack.counts() == (0, 0)


# ---------------------------------------------------------------------- two relays


class Recorder:
    """A publisher that records each delivery's key; `gate` holds its first delivery."""

    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.keys: list[UUID] = []
        self.holding = asyncio.Event()
        self._gate = gate

    async def publish(self, events: object) -> None:
        raise AssertionError("the relay delivers envelopes")

    async def deliver(self, envelope: Envelope) -> None:
        if self._gate is not None and not self.keys:
            self.holding.set()
            await self._gate.wait()
        self.keys.append(envelope.key)
        await asyncio.sleep(0)  # let the other relay run between deliveries


async def _pending_events(factory: SqlUnitOfWorkFactory, orgs: int, each: int) -> None:
    for _ in range(orgs):
        org = new_org()
        async with factory.unscoped() as uow:
            await uow.add(org)
            for _ in range(each):
                user = new_user(org)
                user.record(UserDeleted(organization_id=org.id, user_id=user.id, hard=False))
                await uow.add(user)
            await uow.commit()


@pytest.fixture
async def quiet_factory(pg: PostgresDatabase) -> AsyncIterator[SqlUnitOfWorkFactory]:
    """A factory whose commits only write outbox rows: the relays under test deliver."""
    database = Database(DatabaseSettings(url=pg.app_url, rls_key=RLS_KEY, lock_timeout_ms=5_000))
    factory = SqlUnitOfWorkFactory(
        database, clock=ManualClock(), publisher=Recorder(), outbox=RelaySettings(inline=False)
    )
    try:
        yield factory
    finally:
        await database.dispose()


def _relay(factory: SqlUnitOfWorkFactory, publisher: Recorder, owner: str) -> OutboxRelay:
    settings = RelaySettings(batch_size=4, inline=False)
    return OutboxRelay(
        factory.outbox, publisher, clock=factory.clock, settings=settings, owner=owner
    )


@pytest.mark.postgres
async def test_two_relays_share_the_work_and_never_deliver_one_event_twice(
    quiet_factory: SqlUnitOfWorkFactory,
) -> None:
    await _pending_events(quiet_factory, orgs=3, each=12)
    gate = asyncio.Event()
    first, second = Recorder(gate), Recorder()
    relay_a = _relay(quiet_factory, first, "relay-a")
    relay_b = _relay(quiet_factory, second, "relay-b")

    async def second_relay() -> None:
        await first.holding.wait()  # relay A holds a claimed batch, mid-delivery
        assert await relay_b.run_once() == 4  # B takes other events meanwhile
        gate.set()
        while await relay_b.run_once():
            pass

    async def first_relay() -> None:
        while await relay_a.run_once():
            pass

    await asyncio.gather(first_relay(), second_relay())
    counts = await quiet_factory.outbox.counts()
    assert counts == {OutboxState.PENDING: 0, OutboxState.DEAD: 0}
    assert first.keys and second.keys
    assert not set(first.keys) & set(second.keys)
    everything = first.keys + second.keys
    assert len(everything) == len(set(everything)) == 36


@pytest.mark.postgres
async def test_a_claim_skips_rows_another_transaction_has_locked_instead_of_waiting(
    quiet_factory: SqlUnitOfWorkFactory, pg: PostgresDatabase
) -> None:
    await _pending_events(quiet_factory, orgs=1, each=5)
    owner = await asyncpg.connect(pg.dsn(pg.owner_url))
    try:
        async with owner.transaction():
            locked = [
                r["id"]
                for r in await owner.fetch(
                    "SELECT id FROM outbox_events ORDER BY id LIMIT 2 FOR UPDATE"
                )
            ]
            # lock_timeout is 5 s: a claim that waited for the locks would fail instead
            claimed = await quiet_factory.outbox.claim(
                owner="relay", now=quiet_factory.clock.now(), lease=LATER, limit=10
            )
    finally:
        await owner.close()
    assert len(claimed) == 3
    assert not {c.key for c in claimed} & set(locked)


@pytest.mark.postgres
async def test_the_relay_reaches_every_organization_but_a_tenant_only_its_own(
    quiet_factory: SqlUnitOfWorkFactory,
) -> None:
    await _pending_events(quiet_factory, orgs=2, each=2)
    async with quiet_factory.unscoped() as uow:
        orgs = {u.organization_id for u in (await uow.find(User)).items}
    one = next(iter(orgs))
    now = quiet_factory.clock.now()
    mine = await quiet_factory.outbox.claim(owner="t", now=now, lease=LATER, limit=10, tenant=one)
    assert {c.organization_id for c in mine} == {one} and len(mine) == 2
    rest = await quiet_factory.outbox.claim(owner="r", now=now, lease=LATER, limit=10)
    assert {c.organization_id for c in rest} == orgs - {one} and len(rest) == 2


@pytest.mark.postgres
async def test_delivery_after_a_commit_needs_no_second_connection_while_the_first_is_held(
    pg: PostgresDatabase,
) -> None:
    """With a pool of one connection the committing unit of work (which keeps its
    connection until it closes, on PostgreSQL) must give it back before the delivery takes
    one: else every commit would wait for itself until the pool timed out."""
    database = Database(
        DatabaseSettings(
            url=pg.app_url, rls_key=RLS_KEY, pool_size=1, max_overflow=0, pool_timeout=2
        )
    )
    publisher = Recorder()
    factory = SqlUnitOfWorkFactory(database, clock=ManualClock(), publisher=publisher)
    try:
        await _pending_events(factory, orgs=1, each=2)
        assert len(publisher.keys) == 2
        assert await factory.outbox.counts() == {OutboxState.PENDING: 0, OutboxState.DEAD: 0}
    finally:
        await database.dispose()
