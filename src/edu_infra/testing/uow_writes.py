"""Contract: writes (stamps, versions, tenants, uniqueness, references, delete and restore)."""

from __future__ import annotations

from uuid import uuid4

import pytest

from edu_domain.errors import (
    AlreadyExists,
    ConcurrencyConflict,
    NotFound,
    TenantViolation,
)
from edu_domain.model import (
    EducationalContent,
    User,
)
from edu_domain.query import Query
from edu_infra.testing.harness import (
    Harness,
    new_content,
    new_org,
    new_profile,
    new_user,
)
from edu_infra.testing.uow_deletes import DeletesContract

# ---------------------------------------------------------------- stamps and versions


def _where_name(name: str) -> Query:
    return Query.where(full_name=name)


# ---------------------------------------------------------------- optimistic locking


# ---------------------------------------------------------------- tenants


# ---------------------------------------------------------------- uniqueness


def _where_email(email: str) -> Query:
    return Query.where(email=email)


# ---------------------------------------------------------------- references


class WritesContract(DeletesContract):
    """The `UnitOfWork` contract: writes (deletes included). Needs a `harness` fixture."""

    async def test_add_stamps_audit_fields_and_version_one(self, harness: Harness) -> None:
        org = await harness.make_org()
        admin = uuid4()
        user = new_user(org)
        async with harness.uow(org, admin) as uow:
            await uow.add(user)
            await uow.commit()
        now = harness.clock.now()
        assert (user.created_at, user.updated_at, user.created_by, user.updated_by) == (
            now,
            now,
            admin,
            admin,
        )
        assert user.version == 1
        async with harness.uow(org) as uow:
            stored = await uow.require(User, user.id)
        assert (stored.created_at, stored.created_by, stored.version) == (now, admin, 1)

    async def test_a_change_is_stamped_and_bumps_the_version_once_per_flush(
        self,
        harness: Harness,
    ) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        created = user.created_at
        editor = uuid4()
        later = harness.clock.advance(minutes=5)
        async with harness.uow(org, editor) as uow:
            got = await uow.require(User, user.id)
            got.rename("One")
            got.failed_login_count = 3
            await uow.flush()
            assert got.version == 2
            await uow.flush()
            assert got.version == 2
            got.rename("Two")
            await uow.commit()
            assert got.version == 3
        assert (got.updated_at, got.updated_by, got.created_at) == (later, editor, created)
        async with harness.uow(org) as uow:
            stored = await uow.require(User, user.id)
        assert (stored.version, stored.full_name, stored.updated_at) == (3, "Two", later)

    async def test_reads_flush_pending_changes_first(self, harness: Harness) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        async with harness.uow(org) as uow:
            (await uow.require(User, user.id)).rename("Visible")
            assert await uow.count(User, _where_name("Visible")) == 1
            assert (await uow.require(User, user.id)).version == 2

    async def test_an_unchanged_entity_is_not_written_at_commit(self, harness: Harness) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        async with harness.uow(org) as uow:
            got = await uow.require(User, user.id)
            got.rename(got.full_name)
            await uow.commit()
        assert got.version == 1
        assert harness.listener.commits == []

    async def test_the_unit_of_work_keeps_working_after_a_commit(self, harness: Harness) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        async with harness.uow(org) as uow:
            got = await uow.require(User, user.id)
            got.rename("First")
            await uow.commit()
            got.rename("Second")
            await uow.commit()
            assert await uow.get(User, user.id) is got
        assert got.version == 3
        async with harness.uow(org) as uow:
            assert (await uow.require(User, user.id)).full_name == "Second"

    async def test_a_stale_commit_is_a_concurrency_conflict(self, harness: Harness) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        async with harness.uow(org) as first, harness.uow(org) as second:
            mine = await first.require(User, user.id)
            theirs = await second.require(User, user.id)
            mine.rename("First wins")
            await first.commit()
            theirs.rename("Second loses")
            with pytest.raises(ConcurrencyConflict) as caught:
                await second.commit()
        assert (caught.value.entity, caught.value.key) == ("User", user.id)
        async with harness.uow(org) as uow:
            stored = await uow.require(User, user.id)
        assert (stored.full_name, stored.version) == ("First wins", 2)

    async def test_a_stale_flush_is_a_concurrency_conflict(self, harness: Harness) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        async with harness.uow(org) as slow:
            held = await slow.require(User, user.id)
            async with harness.uow(org) as fast:
                (await fast.require(User, user.id)).rename("Fast")
                await fast.commit()
            held.rename("Slow")
            with pytest.raises(ConcurrencyConflict):
                await slow.flush()

    async def test_changing_a_row_another_unit_of_work_hard_deleted_is_a_conflict(
        self,
        harness: Harness,
    ) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        async with harness.uow(org) as slow:
            held = await slow.require(User, user.id)
            async with harness.uow(org) as fast:
                await fast.delete(await fast.require(User, user.id), hard=True)
                await fast.commit()
            held.rename("Too late")
            with pytest.raises(ConcurrencyConflict):
                await slow.commit()

    async def test_add_of_another_tenants_entity_is_a_tenant_violation(
        self, harness: Harness
    ) -> None:
        mine, theirs = await harness.make_org(), await harness.make_org()
        async with harness.uow(mine) as uow:
            with pytest.raises(TenantViolation):
                await uow.add(new_user(theirs))
            with pytest.raises(TenantViolation):
                await uow.add(new_org())
        async with harness.uow(theirs) as uow:
            assert await uow.count(User) == 0

    async def test_add_all_with_one_foreign_entity_is_a_tenant_violation(
        self, harness: Harness
    ) -> None:
        mine, theirs = await harness.make_org(), await harness.make_org()
        async with harness.uow(mine) as uow:
            with pytest.raises(TenantViolation):
                await uow.add_all([new_user(mine), new_user(theirs)])
            assert await uow.count(User) == 0

    async def test_delete_of_another_tenants_entity_is_a_tenant_violation(
        self, harness: Harness
    ) -> None:
        mine, theirs = await harness.make_org(), await harness.make_org()
        foreign = await harness.make_user(theirs)
        async with harness.uow(mine) as uow:
            with pytest.raises(TenantViolation):
                await uow.delete(foreign)
            with pytest.raises(TenantViolation):
                await uow.delete(foreign, hard=True)
        async with harness.uow(theirs) as uow:
            stored = await uow.require(User, foreign.id)
        assert not stored.is_deleted

    async def test_restore_of_another_tenants_entity_is_a_tenant_violation(
        self, harness: Harness
    ) -> None:
        mine, theirs = await harness.make_org(), await harness.make_org()
        foreign = await harness.make_user(theirs)
        async with harness.uow(theirs) as uow:
            await uow.delete(await uow.require(User, foreign.id))
            await uow.commit()
        async with harness.uow(mine) as uow:
            with pytest.raises(TenantViolation):
                await uow.restore(foreign)

    async def test_moving_a_tracked_entity_to_another_tenant_is_a_tenant_violation(
        self,
        harness: Harness,
    ) -> None:
        mine, theirs = await harness.make_org(), await harness.make_org()
        user = await harness.make_user(mine)
        async with harness.uow(mine) as uow:
            got = await uow.require(User, user.id)
            got.organization_id = theirs.id
            with pytest.raises(TenantViolation):
                await uow.commit()
        async with harness.factory.unscoped() as uow:
            got = await uow.require(User, user.id)
            got.organization_id = theirs.id
            with pytest.raises(TenantViolation):
                await uow.flush()
        async with harness.uow(mine) as uow:
            assert (await uow.require(User, user.id)).organization_id == mine.id

    async def test_unscoped_unit_of_work_writes_any_tenant(self, harness: Harness) -> None:
        a, b = await harness.make_org(), await harness.make_org()
        async with harness.factory.unscoped() as uow:
            await uow.add_all([new_user(a), new_user(b)])
            await uow.commit()
        for org in (a, b):
            async with harness.uow(org) as uow:
                assert await uow.count(User) == 1

    async def test_a_duplicate_email_is_already_exists_at_add(self, harness: Harness) -> None:
        org = await harness.make_org()
        await harness.make_user(org, email="ann@example.org")
        async with harness.uow(org) as uow:
            with pytest.raises(AlreadyExists) as caught:
                await uow.add(new_user(org, email="ann@example.org"))
        assert (caught.value.entity, caught.value.field) == ("User", "email")

    async def test_email_uniqueness_ignores_case(self, harness: Harness) -> None:
        org = await harness.make_org()
        await harness.make_user(org, email="ann@example.org")
        async with harness.uow(org) as uow:
            with pytest.raises(AlreadyExists):
                await uow.add(new_user(org, email="  Ann@EXAMPLE.org "))

    async def test_a_duplicate_username_is_reported_as_username(self, harness: Harness) -> None:
        org = await harness.make_org()
        await harness.make_user(org, username="ann")
        async with harness.uow(org) as uow:
            with pytest.raises(AlreadyExists) as caught:
                await uow.add(new_user(org, username="ann", email="other@example.org"))
        assert caught.value.field == "username"

    async def test_the_same_email_may_exist_in_two_organizations(self, harness: Harness) -> None:
        a, b = await harness.make_org(), await harness.make_org()
        await harness.make_user(a, email="ann@example.org", username="ann")
        await harness.make_user(b, email="ann@example.org", username="ann")
        async with harness.factory.unscoped() as uow:
            assert await uow.count(User, _where_email("ann@example.org")) == 2

    async def test_a_soft_deleted_user_frees_its_email_and_username(self, harness: Harness) -> None:
        org = await harness.make_org()
        old = await harness.make_user(org, email="ann@example.org", username="ann")
        async with harness.uow(org) as uow:
            await uow.delete(await uow.require(User, old.id))
            await uow.add(new_user(org, email="ann@example.org", username="ann"))
            await uow.commit()
        async with harness.uow(org) as uow:
            assert await uow.count(User, include_deleted=True) == 2

    async def test_changing_an_email_to_a_taken_one_fails_at_flush(self, harness: Harness) -> None:
        org = await harness.make_org()
        await harness.make_user(org, email="taken@example.org")
        user = await harness.make_user(org)
        async with harness.uow(org) as uow:
            (await uow.require(User, user.id)).email = "Taken@example.org"
            with pytest.raises(AlreadyExists):
                await uow.flush()

    async def test_content_slugs_are_unique_per_organization(self, harness: Harness) -> None:
        org = await harness.make_org()
        author = await harness.make_user(org)
        await harness.make_content(org, author, slug="intro")
        async with harness.uow(org) as uow:
            with pytest.raises(AlreadyExists) as caught:
                await uow.add(new_content(org, author, slug="intro"))
        assert (caught.value.entity, caught.value.field) == ("EducationalContent", "slug")

    async def test_adding_an_existing_id_is_already_exists(self, harness: Harness) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        twin = new_user(org, id=user.id)
        async with harness.uow(org) as uow:
            with pytest.raises(AlreadyExists):
                await uow.add(twin)

    async def test_add_all_rejects_duplicates_within_the_batch(self, harness: Harness) -> None:
        org = await harness.make_org()
        async with harness.uow(org) as uow:
            with pytest.raises(AlreadyExists) as caught:
                await uow.add_all(
                    [new_user(org, email="x@example.org"), new_user(org, email="X@example.org")]
                )
            assert caught.value.field == "email"
            assert await uow.count(User) == 0

    async def test_add_all_is_all_or_nothing(self, harness: Harness) -> None:
        org = await harness.make_org()
        author = await harness.make_user(org)
        good = [new_content(org, author) for _ in range(3)]
        orphan = new_content(org, author, author_id=uuid4())
        async with harness.uow(org) as uow:
            with pytest.raises(NotFound):
                await uow.add_all([*good, orphan])
            await uow.commit()
        async with harness.uow(org) as uow:
            assert await uow.count(EducationalContent) == 0

    async def test_add_all_inserts_and_stamps_every_entity(self, harness: Harness) -> None:
        org = await harness.make_org()
        author = await harness.make_user(org)
        batch = [new_content(org, author) for _ in range(5)]
        async with harness.uow(org, author) as uow:
            await uow.add_all(iter(batch))
            await uow.commit()
        assert {(c.version, c.created_by, c.created_at) for c in batch} == {
            (1, author.id, harness.clock.now())
        }
        async with harness.uow(org) as uow:
            assert await uow.count(EducationalContent) == 5

    async def test_a_missing_reference_target_is_not_found(self, harness: Harness) -> None:
        org = await harness.make_org()
        author = await harness.make_user(org)
        missing = uuid4()
        async with harness.uow(org) as uow:
            with pytest.raises(NotFound) as caught:
                await uow.add(new_content(org, author, author_id=missing))
        assert (caught.value.entity, caught.value.key) == ("User", missing)

    async def test_a_reference_to_another_organizations_row_is_not_found(
        self, harness: Harness
    ) -> None:
        mine, theirs = await harness.make_org(), await harness.make_org()
        stranger = await harness.make_user(theirs)
        async with harness.uow(mine) as uow:
            with pytest.raises(NotFound):
                await uow.add(new_profile(new_user(mine, id=stranger.id)))

    async def test_a_soft_deleted_target_still_satisfies_a_reference(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()
        author = await harness.make_user(org)
        async with harness.uow(org) as uow:
            await uow.delete(await uow.require(User, author.id))
            await uow.add(new_content(org, author))
            await uow.commit()
        async with harness.uow(org) as uow:
            assert await uow.count(EducationalContent) == 1

    async def test_changing_a_reference_to_a_missing_target_is_not_found(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()
        author = await harness.make_user(org)
        content = await harness.make_content(org, author)
        async with harness.uow(org) as uow:
            (await uow.require(EducationalContent, content.id)).author_id = uuid4()
            with pytest.raises(NotFound):
                await uow.commit()

    async def test_a_row_of_a_missing_organization_is_not_found(self, harness: Harness) -> None:
        ghost = uuid4()
        async with harness.factory.unscoped() as uow:
            with pytest.raises(NotFound) as caught:
                await uow.add(new_user(ghost))
        assert (caught.value.entity, caught.value.key) == ("Organization", ghost)
