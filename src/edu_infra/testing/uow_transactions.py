"""Contract: transactions (isolation, rollback, errors, after-commit work, events, listeners)."""

from __future__ import annotations

from uuid import uuid4

import pytest

from edu_domain.errors import AlreadyExists, NotFound
from edu_domain.model import (
    ContentPublished,
    EducationalContent,
    LoginSession,
    Organization,
    User,
    UserDeleted,
)
from edu_domain.ports import Change, ChangeKind
from edu_infra.testing.harness import Harness, new_session, new_user

# ---------------------------------------------------------------- isolation


# ---------------------------------------------------------------- rollback


# ---------------------------------------------------------------- after commit


# ---------------------------------------------------------------- domain events


# ---------------------------------------------------------------- commit listeners


class TransactionsContract:
    """The `UnitOfWork` contract: transactions. Needs a `harness` fixture."""

    async def test_uncommitted_writes_are_invisible_to_other_units_of_work(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()
        existing = await harness.make_user(org, full_name="Old")
        async with harness.uow(org) as writer:
            await writer.add(new_user(org))
            (await writer.require(User, existing.id)).rename("New")
            await writer.flush()
            async with harness.uow(org) as reader:
                assert await reader.count(User) == 1
                assert (await reader.require(User, existing.id)).full_name == "Old"
            await writer.commit()
            async with harness.uow(org) as reader:
                assert await reader.count(User) == 2
                assert (await reader.require(User, existing.id)).full_name == "New"

    async def test_reads_see_commits_made_after_the_unit_of_work_began(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()
        async with harness.uow(org) as reader:
            assert await reader.count(User) == 0
            await harness.make_user(org)
            assert await reader.count(User) == 1

    async def test_own_flushed_writes_are_visible_to_own_reads(self, harness: Harness) -> None:
        org = await harness.make_org()
        user = new_user(org)
        async with harness.uow(org) as uow:
            await uow.add(user)
            assert await uow.count(User) == 1
            await uow.delete(user)
            assert await uow.count(User) == 0
            assert await uow.count(User, include_deleted=True) == 1

    async def test_leaving_without_commit_rolls_back(self, harness: Harness) -> None:
        org = await harness.make_org()
        async with harness.uow(org) as uow:
            await uow.add(new_user(org))
        async with harness.uow(org) as uow:
            assert await uow.count(User) == 0

    async def test_an_exception_in_the_block_rolls_back_and_propagates(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()

        async def failing_work() -> None:
            async with harness.uow(org) as uow:
                await uow.add(new_user(org))
                await uow.flush()
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            await failing_work()
        async with harness.uow(org) as uow:
            assert await uow.count(User) == 0
        assert harness.listener.commits == []

    async def test_rollback_discards_changes_and_detaches_objects(self, harness: Harness) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org, full_name="Kept")
        async with harness.uow(org) as uow:
            held = await uow.require(User, user.id)
            held.rename("Dropped")
            await uow.flush()
            await uow.rollback()
            assert held.full_name == "Dropped"
            again = await uow.require(User, user.id)
            assert again is not held
            assert (again.full_name, again.version) == ("Kept", 1)
            held.rename("Ignored")
            await uow.commit()
        async with harness.uow(org) as uow:
            assert (await uow.require(User, user.id)).full_name == "Kept"

    async def test_a_unit_of_work_is_usable_after_rollback(self, harness: Harness) -> None:
        org = await harness.make_org()
        async with harness.uow(org) as uow:
            await uow.add(new_user(org))
            await uow.rollback()
            await uow.add(new_user(org))
            await uow.commit()
        async with harness.uow(org) as uow:
            assert await uow.count(User) == 1

    async def test_a_failed_write_rolls_back_the_whole_transaction(self, harness: Harness) -> None:
        org = await harness.make_org()
        taken = await harness.make_user(org, email="taken@example.org")
        async with harness.uow(org) as uow:
            earlier = new_user(org)
            await uow.add(earlier)
            (await uow.require(User, taken.id)).rename("Renamed")
            with pytest.raises(AlreadyExists):
                await uow.add(new_user(org, email="taken@example.org"))
            assert await uow.get(User, earlier.id) is None
            assert (await uow.require(User, taken.id)).full_name is None
            await uow.add(new_user(org))
            await uow.commit()
        async with harness.uow(org) as uow:
            assert await uow.count(User) == 2
            assert await uow.get(User, earlier.id) is None

    async def test_a_failed_commit_rolls_back_and_the_unit_of_work_stays_usable(
        self,
        harness: Harness,
    ) -> None:
        org = await harness.make_org()
        author = await harness.make_user(org)
        await harness.make_user(org, email="taken@example.org")
        async with harness.uow(org) as uow:
            (await uow.require(User, author.id)).rename("Lost")
            await uow.add(new_session(author, harness.clock))
            (await uow.require(User, author.id)).email = "taken@example.org"
            with pytest.raises(AlreadyExists):
                await uow.commit()
            await uow.commit()
        async with harness.uow(org) as uow:
            stored = await uow.require(User, author.id)
            assert (stored.full_name, stored.email, stored.version) == (None, author.email, 1)
            assert await uow.count(LoginSession) == 0
        assert harness.listener.commits == []

    async def test_a_failed_delete_rolls_back_earlier_work(self, harness: Harness) -> None:
        org = await harness.make_org()
        async with harness.uow(org) as uow:
            await uow.add(new_user(org))
            with pytest.raises(NotFound):
                await uow.delete(new_user(org))
            await uow.commit()
        async with harness.uow(org) as uow:
            assert await uow.count(User) == 0

    async def test_after_commit_callbacks_run_in_order_only_after_commit(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()
        user = new_user(org)
        seen: list[tuple[str, int]] = []

        def record(name: str) -> object:
            async def callback() -> None:
                async with harness.uow(org) as other:
                    seen.append((name, await other.count(User)))

            return callback

        async with harness.uow(org) as uow:
            await uow.add(user)
            uow.after_commit(record("first"))  # type: ignore[arg-type]
            uow.after_commit(record("second"))  # type: ignore[arg-type]
            assert seen == []
            await uow.commit()
            assert seen == [("first", 1), ("second", 1)]
            await uow.commit()
        assert len(seen) == 2

    async def test_after_commit_callbacks_never_run_after_rollback(self, harness: Harness) -> None:
        org = await harness.make_org()
        calls: list[str] = []

        async def callback() -> None:
            calls.append("ran")

        async with harness.uow(org) as uow:
            uow.after_commit(callback)
            await uow.rollback()
            await uow.commit()
        async with harness.uow(org) as uow:
            uow.after_commit(callback)
        async with harness.uow(org) as uow:
            uow.after_commit(callback)
            with pytest.raises(NotFound):
                await uow.delete(new_user(org))
            await uow.commit()
        assert calls == []

    async def test_a_failing_callback_does_not_undo_the_commit(self, harness: Harness) -> None:
        org = await harness.make_org()
        calls: list[str] = []

        async def broken() -> None:
            raise RuntimeError("callback failed")

        async def after() -> None:
            calls.append("after")

        async with harness.uow(org) as uow:
            await uow.add(new_user(org))
            uow.after_commit(broken)
            uow.after_commit(after)
            await uow.commit()
        assert calls == ["after"]
        async with harness.uow(org) as uow:
            assert await uow.count(User) == 1

    async def test_callbacks_run_before_events_and_listeners(self, harness: Harness) -> None:
        org = await harness.make_org()
        author = await harness.make_user(org)
        content = await harness.make_content(org, author)
        observed: list[tuple[int, int]] = []

        async def callback() -> None:
            observed.append((len(harness.publisher.events), len(harness.listener.commits)))

        async with harness.uow(org) as uow:
            (await uow.require(EducationalContent, content.id)).publish(harness.clock.now())
            uow.after_commit(callback)
            await uow.commit()
        assert observed == [(0, 0)]
        assert (len(harness.publisher.events), len(harness.listener.commits)) == (1, 1)

    async def test_events_are_published_only_after_commit(self, harness: Harness) -> None:
        org = await harness.make_org()
        author = await harness.make_user(org)
        content = await harness.make_content(org, author)
        async with harness.uow(org) as uow:
            (await uow.require(EducationalContent, content.id)).publish(harness.clock.now())
            await uow.flush()
            assert harness.publisher.events == []
            await uow.commit()
        assert harness.publisher.events == [
            ContentPublished(organization_id=org.id, content_id=content.id, slug=content.slug)
        ]

    async def test_events_of_a_rolled_back_transaction_are_discarded(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()
        author = await harness.make_user(org)
        content = await harness.make_content(org, author)
        async with harness.uow(org) as uow:
            held = await uow.require(EducationalContent, content.id)
            held.publish(harness.clock.now())
            await uow.rollback()
            await uow.commit()
        assert harness.publisher.events == []
        assert not held.has_events()

    async def test_events_of_added_and_hard_deleted_entities_are_published(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()
        doomed = await harness.make_user(org)
        async with harness.uow(org) as uow:
            user = await uow.require(User, doomed.id)
            user.record(UserDeleted(organization_id=org.id, user_id=user.id, hard=True))
            await uow.delete(user, hard=True)
            fresh = new_user(org)
            fresh.record(UserDeleted(organization_id=org.id, user_id=fresh.id, hard=False))
            await uow.add(fresh)
            await uow.commit()
        assert {(e.user_id, e.hard) for e in harness.publisher.of_type(UserDeleted)} == {  # type: ignore[attr-defined]
            (doomed.id, True),
            (fresh.id, False),
        }

    async def test_listeners_hear_every_written_entity_after_commit(self, harness: Harness) -> None:
        org = await harness.make_org()
        changed = await harness.make_user(org)
        soft = await harness.make_user(org)
        hard = await harness.make_user(org)
        added = new_user(org)
        async with harness.uow(org) as uow:
            (await uow.require(User, changed.id)).rename("Changed")
            await uow.delete(await uow.require(User, soft.id))
            await uow.delete(await uow.require(User, hard.id), hard=True)
            await uow.add(added)
            assert harness.listener.commits == []
            await uow.commit()
        assert len(harness.listener.commits) == 1
        assert set(harness.listener.commits[0]) == {
            Change(User, changed.id, org.id, ChangeKind.UPDATE),
            Change(User, soft.id, org.id, ChangeKind.UPDATE),
            Change(User, hard.id, org.id, ChangeKind.DELETE),
            Change(User, added.id, org.id, ChangeKind.INSERT),
        }

    async def test_listeners_hear_restores_as_updates(self, harness: Harness) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        async with harness.uow(org) as uow:
            await uow.delete(await uow.require(User, user.id))
            await uow.commit()
            await uow.restore(await uow.require(User, user.id, include_deleted=True))
            await uow.commit()
        assert harness.listener.commits == [
            [Change(User, user.id, org.id, ChangeKind.UPDATE)],
            [Change(User, user.id, org.id, ChangeKind.UPDATE)],
        ]

    async def test_listeners_hear_an_organization_as_its_own_tenant(self, harness: Harness) -> None:
        org = Organization(name="Acme", slug=f"acme-{uuid4().hex[:8]}")
        async with harness.factory.unscoped() as uow:
            await uow.add(org)
            await uow.commit()
        assert harness.listener.changes == [Change(Organization, org.id, org.id, ChangeKind.INSERT)]

    async def test_listeners_hear_nothing_without_a_change_or_after_rollback(
        self,
        harness: Harness,
    ) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        async with harness.uow(org) as uow:
            await uow.require(User, user.id)
            await uow.commit()
            (await uow.require(User, user.id)).rename("Dropped")
            await uow.flush()
            await uow.rollback()
        async with harness.uow(org) as uow:
            (await uow.require(User, user.id)).rename("Dropped again")
        assert harness.listener.commits == []
        assert harness.publisher.events == []

    async def test_a_stale_change_flushed_by_a_later_read_is_a_concurrency_conflict(
        self,
        harness: Harness,
    ) -> None:
        from edu_domain.errors import ConcurrencyConflict
        from edu_domain.model import Organization

        org = await harness.make_org()
        user = await harness.make_user(org, full_name="Old")
        async with harness.uow(org) as slow:
            mine = await slow.require(User, user.id)
            async with harness.uow(org) as fast:
                (await fast.require(User, user.id)).rename("Fast")
                await fast.commit()
            mine.rename("Slow")
            with pytest.raises(ConcurrencyConflict):
                await slow.get(Organization, org.id)
            assert await slow.get(Organization, org.id) is not None
        async with harness.uow(org) as check:
            assert (await check.require(User, user.id)).full_name == "Fast"
