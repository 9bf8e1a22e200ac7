"""Contract: deletes (cascades, restrictions, soft and hard delete, restore) and the
writes around them."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest

from edu_domain.errors import (
    AlreadyExists,
    NotFound,
    ValidationError,
)
from edu_domain.model import (
    EducationalContent,
    LoginSession,
    Organization,
    User,
    UserProfile,
)
from edu_domain.query import Query
from edu_infra.testing.harness import (
    Harness,
    new_content,
    new_profile,
    new_session,
    new_user,
)


class DeletesContract:
    """The `UnitOfWork` contract: deletes and restores. Needs a `harness` fixture."""

    async def test_hard_deleting_an_organization_removes_all_its_rows(
        self, harness: Harness
    ) -> None:
        org, other = await harness.make_org(), await harness.make_org()
        author = await harness.make_user(org)
        await harness.make_content(org, author)
        await harness.make_session(author)
        kept = await harness.make_user(other)
        async with harness.factory.unscoped() as uow:
            await uow.delete(await uow.require(Organization, org.id), hard=True)
            await uow.commit()
        mine = Query.where(organization_id=org.id)
        async with harness.factory.unscoped() as uow:
            assert await uow.get(Organization, org.id, include_deleted=True) is None
            for cls in (User, EducationalContent, LoginSession):
                assert await uow.count(cls, mine, include_deleted=True) == 0
            assert await uow.get(User, kept.id) is not None

    async def test_hard_deleting_a_user_cascades_to_sessions_and_profile(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        other = await harness.make_user(org)
        async with harness.uow(org) as uow:
            await uow.add_all(
                [
                    new_session(user, harness.clock),
                    new_session(user, harness.clock),
                    new_profile(user),
                    new_session(other, harness.clock),
                ]
            )
            await uow.commit()
        async with harness.uow(org) as uow:
            await uow.delete(await uow.require(User, user.id), hard=True)
            assert await uow.count(LoginSession) == 1
            await uow.commit()
        async with harness.uow(org) as uow:
            assert await uow.get(User, user.id, include_deleted=True) is None
            assert await uow.count(LoginSession, include_deleted=True) == 1
            assert await uow.count(UserProfile, include_deleted=True) == 0

    async def test_hard_deleting_an_author_of_content_is_restricted(self, harness: Harness) -> None:
        org = await harness.make_org()
        author = await harness.make_user(org)
        await harness.make_content(org, author)
        async with harness.uow(org) as uow:
            with pytest.raises(ValidationError) as caught:
                await uow.delete(await uow.require(User, author.id), hard=True)
        assert caught.value.field == "author_id"
        assert "still referenced by EducationalContent" in str(caught.value)
        async with harness.uow(org) as uow:
            assert await uow.get(User, author.id) is not None

    async def test_soft_deleted_content_still_restricts_its_authors_hard_delete(
        self,
        harness: Harness,
    ) -> None:
        org = await harness.make_org()
        author = await harness.make_user(org)
        content = await harness.make_content(org, author)
        async with harness.uow(org) as uow:
            await uow.delete(await uow.require(EducationalContent, content.id))
            with pytest.raises(ValidationError):
                await uow.delete(await uow.require(User, author.id), hard=True)

    async def test_soft_delete_stamps_deleted_and_updated_fields(self, harness: Harness) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        admin = uuid4()
        when = harness.clock.advance(hours=1)
        async with harness.uow(org, admin) as uow:
            got = await uow.require(User, user.id)
            await uow.delete(got)
            await uow.commit()
        assert (got.deleted_at, got.deleted_by, got.updated_at, got.updated_by, got.version) == (
            when,
            admin,
            when,
            admin,
            2,
        )
        async with harness.uow(org) as uow:
            stored = await uow.require(User, user.id, include_deleted=True)
        assert (stored.deleted_at, stored.deleted_by, stored.version) == (when, admin, 2)

    async def test_deleting_a_deleted_entity_again_changes_nothing(self, harness: Harness) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        first = harness.clock.now()
        async with harness.uow(org) as uow:
            got = await uow.require(User, user.id)
            await uow.delete(got)
            await uow.commit()
            harness.clock.advance(minutes=1)
            await uow.delete(got)
            await uow.commit()
        assert (got.deleted_at, got.version) == (first, 2)

    async def test_hard_delete_removes_the_row(self, harness: Harness) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        async with harness.uow(org) as uow:
            await uow.delete(await uow.require(User, user.id), hard=True)
            assert await uow.get(User, user.id, include_deleted=True) is None
            await uow.commit()
        async with harness.factory.unscoped() as uow:
            assert await uow.get(User, user.id, include_deleted=True) is None

    async def test_hard_delete_of_a_soft_deleted_row_removes_it(self, harness: Harness) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        async with harness.uow(org) as uow:
            got = await uow.require(User, user.id)
            await uow.delete(got)
            await uow.delete(got, hard=True)
            await uow.commit()
        async with harness.uow(org) as uow:
            assert await uow.count(User, include_deleted=True) == 0

    async def test_restore_brings_a_soft_deleted_entity_back(self, harness: Harness) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        async with harness.uow(org) as uow:
            await uow.delete(await uow.require(User, user.id))
            await uow.commit()
        async with harness.uow(org) as uow:
            got = await uow.require(User, user.id, include_deleted=True)
            await uow.restore(got)
            await uow.commit()
        assert (got.deleted_at, got.deleted_by, got.version) == (None, None, 3)
        async with harness.uow(org) as uow:
            assert await uow.get(User, user.id) is not None

    async def test_restore_fails_when_the_email_was_reused_meanwhile(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()
        old = await harness.make_user(org, email="ann@example.org")
        async with harness.uow(org) as uow:
            await uow.delete(await uow.require(User, old.id))
            await uow.commit()
        await harness.make_user(org, email="ann@example.org")
        async with harness.uow(org) as uow:
            got = await uow.require(User, old.id, include_deleted=True)
            with pytest.raises(AlreadyExists) as caught:
                await uow.restore(got)
        assert caught.value.field == "email"
        async with harness.uow(org) as uow:
            assert (await uow.require(User, old.id, include_deleted=True)).is_deleted

    async def test_deleting_or_restoring_a_never_added_entity_is_not_found(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()
        async with harness.uow(org) as uow:
            with pytest.raises(NotFound):
                await uow.delete(new_user(org))
            with pytest.raises(NotFound):
                await uow.delete(new_user(org), hard=True)
            with pytest.raises(NotFound):
                await uow.restore(new_user(org))

    async def test_an_added_then_hard_deleted_entity_leaves_no_row(self, harness: Harness) -> None:
        org = await harness.make_org()
        user = new_user(org)
        async with harness.uow(org) as uow:
            await uow.add(user)
            await uow.delete(user, hard=True)
            await uow.commit()
        async with harness.uow(org) as uow:
            assert await uow.count(User, include_deleted=True) == 0

    async def test_session_expiry_stamps_survive_a_round_trip(self, harness: Harness) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        session = await harness.make_session(
            user, expires_at=harness.clock.now() + timedelta(days=3)
        )
        async with harness.uow(org) as uow:
            stored = await uow.require(LoginSession, session.id)
        assert stored.expires_at == harness.clock.now() + timedelta(days=3)
        assert stored.user_id == user.id

    async def test_organizations_are_unique_by_slug(self, harness: Harness) -> None:
        await harness.make_org(slug="acme")
        async with harness.factory.unscoped() as uow:
            with pytest.raises(AlreadyExists) as caught:
                await uow.add(Organization(name="Other", slug="acme"))
        assert (caught.value.entity, caught.value.field) == ("Organization", "slug")

    @pytest.mark.parametrize("bulk", [False, True])
    async def test_a_dict_changed_in_place_is_validated_again_at_the_write(
        self, harness: Harness, bulk: bool
    ) -> None:
        """attrs validates at construction and assignment; an in-place change escapes both."""
        org = await harness.make_org()
        author = await harness.make_user(org)
        content = new_content(org, author)
        content.metadata["bad"] = {1, 2}  # a set is not JSON
        async with harness.uow(org) as uow:
            write = uow.add_all([content]) if bulk else uow.add(content)
            with pytest.raises(ValidationError):
                await write
            assert await uow.count(EducationalContent) == 0

    async def test_a_dict_changed_in_place_is_validated_again_at_an_update(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()
        author = await harness.make_user(org)
        content = await harness.make_content(org, author)
        async with harness.uow(org) as uow:
            stored = await uow.require(EducationalContent, content.id)
            stored.metadata["bad"] = {1, 2}
            with pytest.raises(ValidationError):
                await uow.commit()
        async with harness.uow(org) as uow:
            again = await uow.require(EducationalContent, content.id)
        assert "bad" not in again.metadata and again.version == content.version
