"""Contract: the transactional outbox (events committed with the change, then relayed).

Needs a harness whose `relay` is the factory's outbox relay (skipped without one).
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest

from edu_domain.errors import AlreadyExists, TenantViolation
from edu_domain.model import Organization, User, UserDeleted
from edu_infra.outbox import OutboxRelay, OutboxState, RelaySettings
from edu_infra.testing.harness import Harness, new_user

_LATER = timedelta(hours=1)  # past every backoff and lease of the default settings


def _relay(harness: Harness) -> OutboxRelay:
    if harness.relay is None:
        pytest.skip(f"the {harness.name} harness has no outbox relay")
    return harness.relay


async def _commit_user_with_event(
    harness: Harness, org: Organization | UUID, *, names: UUID | None = None
) -> User:
    """A new user and one event about it (naming `names`, default: its organization)."""
    tenant = org.id if isinstance(org, Organization) else org
    user = new_user(tenant)
    user.record(UserDeleted(organization_id=names or tenant, user_id=user.id, hard=False))
    async with harness.uow(tenant) as uow:
        await uow.add(user)
        await uow.commit()
    return user


async def _counts(relay: OutboxRelay) -> tuple[int, int]:
    counts = await relay.store.counts()
    return counts[OutboxState.PENDING], counts[OutboxState.DEAD]


class OutboxContract:
    """The `UnitOfWork` contract: the outbox. Needs a `harness` fixture."""

    async def test_a_committed_event_is_delivered_once_with_its_key_and_leaves_the_outbox(
        self, harness: Harness
    ) -> None:
        relay = _relay(harness)
        org = await harness.make_org()
        user = await _commit_user_with_event(harness, org)
        [envelope] = harness.publisher.envelopes
        assert isinstance(envelope.key, UUID) and envelope.attempt == 1
        assert envelope.organization_id == org.id
        assert envelope.event == UserDeleted(organization_id=org.id, user_id=user.id, hard=False)
        assert await _counts(relay) == (0, 0)
        assert await relay.run_once() == 0  # nothing left to deliver twice

    async def test_events_of_work_that_did_not_commit_never_reach_the_outbox(
        self, harness: Harness
    ) -> None:
        relay = _relay(harness)
        org = await harness.make_org()
        taken = await harness.make_user(org)
        async with harness.uow(org) as uow:
            user = new_user(org)
            user.record(UserDeleted(organization_id=org.id, user_id=user.id, hard=False))
            await uow.add(user)
        async with harness.uow(org) as uow:
            await uow.add(new_user(org))
            clash = new_user(org, email=taken.email)
            clash.record(UserDeleted(organization_id=org.id, user_id=clash.id, hard=False))
            with pytest.raises(AlreadyExists):
                await uow.add(clash)
            await uow.commit()  # what is left: nothing (a failed write rolls everything back)
        assert await _counts(relay) == (0, 0)
        assert harness.publisher.events == []

    async def test_a_failed_delivery_waits_for_its_backoff_then_is_retried_with_the_same_key(
        self, harness: Harness
    ) -> None:
        relay = _relay(harness)
        org = await harness.make_org()
        harness.publisher.failure = RuntimeError("notifier down")
        try:
            await _commit_user_with_event(harness, org)
            assert await _counts(relay) == (1, 0)
            assert await relay.run_once() == 0  # not due before its backoff
        finally:
            harness.publisher.failure = None
        harness.clock.advance(_LATER)
        assert await relay.run_once() == 1
        first, again = harness.publisher.envelopes
        assert again.key == first.key and (first.attempt, again.attempt) == (1, 2)
        assert await _counts(relay) == (0, 0)

    async def test_an_event_failing_max_attempts_times_is_dead_lettered_until_requeued(
        self, harness: Harness
    ) -> None:
        relay = _relay(harness)
        strict = OutboxRelay(
            relay.store,
            harness.publisher,
            clock=harness.clock,
            settings=RelaySettings(max_attempts=2),
        )
        org = await harness.make_org()
        harness.publisher.failure = RuntimeError("notifier down")
        try:
            await _commit_user_with_event(harness, org)
            harness.clock.advance(_LATER)
            assert await strict.run_once() == 1
            harness.clock.advance(_LATER)
            assert await strict.run_once() == 0  # dead letters are not claimed
        finally:
            harness.publisher.failure = None
        assert await _counts(relay) == (0, 1)
        [dead] = await relay.store.dead_letters()
        assert (dead.organization_id, dead.kind, dead.attempts) == (org.id, "UserDeleted", 2)
        assert dead.last_error == "RuntimeError"
        assert await relay.store.requeue(now=harness.clock.now(), keys=[dead.key]) == 1
        assert await strict.run_once() == 1
        assert harness.publisher.envelopes[-1].key == dead.key
        assert await _counts(relay) == (0, 0)

    async def test_a_claimed_event_is_not_claimed_again_until_its_lease_expires(
        self, harness: Harness
    ) -> None:
        relay = _relay(harness)
        org = await harness.make_org()
        harness.publisher.failure = RuntimeError("notifier down")
        try:
            await _commit_user_with_event(harness, org)
        finally:
            harness.publisher.failure = None
        harness.clock.advance(_LATER)
        store, now, lease = relay.store, harness.clock.now(), timedelta(minutes=1)
        [held] = await store.claim(owner="a", now=now, lease=lease, limit=10)
        assert await store.claim(owner="b", now=now + lease / 2, lease=lease, limit=10) == []
        [again] = await store.claim(owner="b", now=now + lease, lease=lease, limit=10)
        assert again.key == held.key and again.attempts == held.attempts + 1
        await store.settle(owner="a", delivered=[held], failed=[])  # "a" lost its lease
        assert await _counts(relay) == (1, 0)
        await store.settle(owner="b", delivered=[again], failed=[])
        assert await _counts(relay) == (0, 0)

    async def test_an_event_naming_another_organization_is_refused_with_the_whole_commit(
        self, harness: Harness
    ) -> None:
        relay = _relay(harness)
        mine, theirs = await harness.make_org(), await harness.make_org()
        with pytest.raises(TenantViolation):
            await _commit_user_with_event(harness, mine, names=theirs.id)
        async with harness.uow(mine) as uow:
            assert await uow.count(User) == 0
        assert await _counts(relay) == (0, 0)

    async def test_a_tenant_sees_and_settles_only_its_own_outbox_rows(
        self, harness: Harness
    ) -> None:
        relay = _relay(harness)
        mine, theirs = await harness.make_org(), await harness.make_org()
        harness.publisher.failure = RuntimeError("notifier down")
        try:
            await _commit_user_with_event(harness, mine)
            await _commit_user_with_event(harness, theirs)
        finally:
            harness.publisher.failure = None
        harness.clock.advance(_LATER)
        store, now, lease = relay.store, harness.clock.now(), timedelta(minutes=1)
        claimed = await store.claim(owner="a", now=now, lease=lease, limit=10, tenant=mine.id)
        assert [c.organization_id for c in claimed] == [mine.id]
        [theirs_row] = await store.claim(owner="b", now=now, lease=lease, limit=10)
        await store.settle(owner="b", delivered=[theirs_row], failed=[], tenant=mine.id)
        assert await _counts(relay) == (2, 0)  # another tenant's row is out of its reach

    async def test_unscoped_work_writes_events_under_the_events_organization(
        self, harness: Harness
    ) -> None:
        _relay(harness)
        org = await harness.make_org()
        user = new_user(org)
        user.record(UserDeleted(organization_id=org.id, user_id=user.id, hard=False))
        async with harness.factory.unscoped() as uow:
            await uow.add(user)
            await uow.commit()
        [envelope] = harness.publisher.envelopes
        assert envelope.organization_id == org.id
