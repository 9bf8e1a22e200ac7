"""Contract: `import_rows` (plain rows, checked by the entities' rules, all or nothing)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest

from edu_domain.errors import (
    AlreadyExists,
    DomainError,
    NotFound,
    ReadOnlyError,
    TenantViolation,
    ValidationError,
)
from edu_domain.imports import CHUNK
from edu_domain.model import Organization, User, UserProfile, UserRole, UserStatus
from edu_domain.ports import ChangeKind
from edu_domain.query import Query
from edu_infra.testing.harness import Harness, unique_name


def user_row(**fields: Any) -> dict[str, Any]:
    """A valid plain User row (no organization: the unit of work's is used)."""
    name = fields.pop("username", None) or unique_name("imp")
    return {
        "email": f"{name}@example.org",
        "username": name,
        "hashed_password": "fast$v2$1$00",
        **fields,
    }


async def _count(harness: Harness, org: Organization) -> int:
    async with harness.uow(org) as uow:
        return await uow.count(User, include_deleted=True)


def _no_driver_text(error: BaseException) -> None:
    """A domain error, with no SQL or driver wording in it."""
    assert isinstance(error, DomainError)
    text = str(error).lower()
    for word in ("insert", "copy", "select", "asyncpg", "sqlite", "constraint", "violates"):
        assert word not in text, str(error)


class ImportsContract:
    """The `UnitOfWork` contract: bulk import of plain rows. Needs a `harness` fixture."""

    async def test_imported_rows_are_counted_stamped_and_visible(self, harness: Harness) -> None:
        org = await harness.make_org()
        admin = uuid4()
        rows = [
            user_row(username="ann", email=" Ann@Example.ORG ", role="teacher"),
            user_row(username="bob", full_name="Bob B", status=UserStatus.ACTIVE),
        ]
        async with harness.uow(org, admin) as uow:
            assert await uow.import_rows(User, rows) == 2
            seen = {u.username: u for u in (await uow.find(User)).items}  # the same transaction
            assert set(seen) == {"ann", "bob"}
            await uow.commit()
        async with harness.uow(org) as uow:
            ann = await uow.first(User, Query.where(username="ann"))
            bob = await uow.first(User, Query.where(username="bob"))
        assert ann is not None and bob is not None
        now = harness.clock.now()
        assert (ann.email, ann.role, ann.status) == ("ann@example.org", UserRole.TEACHER, "pending")
        assert (bob.full_name, bob.status, bob.role) == ("Bob B", UserStatus.ACTIVE, "student")
        for user in (ann, bob):
            assert isinstance(user.id, UUID)
            assert (user.organization_id, user.version) == (org.id, 1)
            assert (user.created_at, user.updated_at, user.created_by) == (now, now, admin)
            assert (user.deleted_at, user.email_verified, user.failed_login_count) == (
                None,
                False,
                0,
            )
        assert rows[0]["email"] == " Ann@Example.ORG "  # the caller's rows are not changed

    async def test_a_given_id_is_kept_and_the_imported_entity_can_be_changed(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()
        wanted = uuid4()
        async with harness.uow(org) as uow:
            await uow.import_rows(User, iter([user_row(id=wanted, username="kept")]))
            user = await uow.require(User, wanted)
            user.rename("Renamed")
            await uow.commit()
        async with harness.uow(org) as uow:
            stored = await uow.require(User, wanted)
        assert (stored.username, stored.full_name, stored.version) == ("kept", "Renamed", 2)

    async def test_commit_listeners_hear_inserts_and_no_event_is_published(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()
        ids = [uuid4(), uuid4()]
        async with harness.uow(org) as uow:
            await uow.import_rows(User, [user_row(id=i) for i in ids])
            await uow.commit()
        assert {(c.entity, c.id, c.organization_id, c.kind) for c in harness.listener.changes} == {
            (User, i, org.id, ChangeKind.INSERT) for i in ids
        }
        assert harness.publisher.events == []

    async def test_rows_of_another_entity_class_follow_its_rules(self, harness: Harness) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        async with harness.uow(org) as uow:
            rows = [{"user_id": user.id, "skills": ["python", " sql "], "timezone": "Europe/Paris"}]
            assert await uow.import_rows(UserProfile, rows) == 1
            await uow.commit()
        async with harness.uow(org) as uow:
            profile = await uow.first(UserProfile, Query.where(user_id=user.id))
        assert profile is not None
        assert (profile.skills, profile.timezone, profile.locale) == (
            ("python", "sql"),
            "Europe/Paris",
            "en",
        )

    async def test_an_empty_import_writes_nothing(self, harness: Harness) -> None:
        org = await harness.make_org()
        async with harness.uow(org) as uow:
            assert await uow.import_rows(User, []) == 0
            await uow.commit()
        assert await _count(harness, org) == 0

    # ------------------------------------------------------------ bad input changes nothing

    @pytest.mark.parametrize(
        ("bad", "field"),
        [
            ({"email": "not-an-email"}, "email"),
            ({"username": "x"}, "username"),
            ({"role": "emperor"}, "role"),
            ({"failed_login_count": -1}, "failed_login_count"),
            ({"full_name": "bad\x00name"}, "full_name"),
            ({"nickname": "nick"}, "nickname"),
            ({"version": 7}, "version"),
            ({"created_at": None}, "created_at"),
            ({"hashed_password": None}, "hashed_password"),
        ],
    )
    async def test_an_invalid_row_is_a_validation_error_and_changes_nothing(
        self, harness: Harness, bad: dict[str, Any], field: str
    ) -> None:
        org = await harness.make_org()
        async with harness.uow(org) as uow:
            await uow.add(User(organization_id=org.id, **user_row()))  # rolled back too
            with pytest.raises(ValidationError) as caught:
                await uow.import_rows(User, [user_row(), user_row(**bad), user_row()])
            assert caught.value.field == field
            await uow.commit()
        assert await _count(harness, org) == 0

    async def test_a_missing_required_field_is_named(self, harness: Harness) -> None:
        org = await harness.make_org()
        row = user_row()
        del row["hashed_password"]
        async with harness.uow(org) as uow:
            with pytest.raises(ValidationError) as caught:
                await uow.import_rows(User, [row])
        assert caught.value.field == "hashed_password"

    @pytest.mark.parametrize("field", ["email", "username"])
    async def test_a_duplicate_within_the_batch_is_already_exists(
        self, harness: Harness, field: str
    ) -> None:
        org = await harness.make_org()
        first, second = user_row(), user_row()
        second[field] = first[field].upper()  # unique ignoring case: stored lower-cased
        async with harness.uow(org) as uow:
            with pytest.raises(AlreadyExists) as caught:
                await uow.import_rows(User, [first, second])
            _no_driver_text(caught.value)
        assert (caught.value.entity, caught.value.field) == ("User", field)
        assert await _count(harness, org) == 0

    @pytest.mark.parametrize("field", ["email", "username"])
    async def test_a_duplicate_of_a_stored_row_is_already_exists(
        self, harness: Harness, field: str
    ) -> None:
        org = await harness.make_org()
        stored = await harness.make_user(org)
        clash = {**user_row(), field: getattr(stored, field)}
        async with harness.uow(org) as uow:
            with pytest.raises(AlreadyExists) as caught:
                await uow.import_rows(User, [user_row(), clash])
            _no_driver_text(caught.value)
        assert caught.value.field == field
        assert await _count(harness, org) == 1

    async def test_a_repeated_or_stored_id_is_already_exists(self, harness: Harness) -> None:
        org = await harness.make_org()
        stored = await harness.make_user(org)
        again = uuid4()
        for rows in ([user_row(id=again), user_row(id=again)], [user_row(id=stored.id)]):
            async with harness.uow(org) as uow:
                with pytest.raises(AlreadyExists) as caught:
                    await uow.import_rows(User, rows)
                _no_driver_text(caught.value)
            assert caught.value.field == "id"
        assert await _count(harness, org) == 1

    async def test_a_row_of_another_organization_is_a_tenant_violation(
        self, harness: Harness
    ) -> None:
        org, other = await harness.make_org(), await harness.make_org()
        async with harness.uow(org) as uow:
            with pytest.raises(TenantViolation):
                await uow.import_rows(User, [user_row(), user_row(organization_id=other.id)])
        assert await _count(harness, org) == 0
        assert await _count(harness, other) == 0

    async def test_a_missing_reference_is_not_found(self, harness: Harness) -> None:
        org = await harness.make_org()
        async with harness.uow(org) as uow:
            with pytest.raises(NotFound):
                await uow.import_rows(UserProfile, [{"user_id": uuid4()}])

    async def test_a_bad_row_in_a_later_chunk_undoes_the_earlier_chunks(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()

        def rows() -> Iterator[dict[str, Any]]:
            for i in range(CHUNK + 10):
                yield user_row(username=f"chunk{i}", email=f"chunk{i}@example.org")
            yield user_row(username="chunk3", email="late@example.org")  # a first chunk's name

        async with harness.uow(org) as uow:
            with pytest.raises(AlreadyExists) as caught:
                await uow.import_rows(User, rows())
            assert caught.value.field == "username"
            assert await uow.count(User) == 0
        assert await _count(harness, org) == 0

    @pytest.mark.parametrize("rows", ["not rows", {"email": "a@example.org"}, 42])
    async def test_rows_must_be_an_iterable_of_rows(self, harness: Harness, rows: object) -> None:
        org = await harness.make_org()
        async with harness.uow(org) as uow:
            with pytest.raises(ValidationError) as caught:
                await uow.import_rows(User, rows)  # type: ignore[arg-type]
        assert caught.value.field == "rows"

    async def test_the_entity_class_is_checked(self, harness: Harness) -> None:
        org = await harness.make_org()
        async with harness.uow(org) as uow:
            with pytest.raises(ValidationError) as caught:
                await uow.import_rows(dict, [user_row()])  # type: ignore[arg-type]
        assert caught.value.field == "entity"

    async def test_an_unscoped_import_needs_the_organization(self, harness: Harness) -> None:
        org = await harness.make_org()
        async with harness.factory.unscoped() as uow:
            with pytest.raises(ValidationError) as caught:
                await uow.import_rows(User, [user_row()])
            assert caught.value.field == "organization_id"
            assert await uow.import_rows(User, [user_row(organization_id=org.id)]) == 1
            await uow.commit()
        assert await _count(harness, org) == 1

    async def test_a_read_only_unit_of_work_refuses_an_import(self, harness: Harness) -> None:
        org = await harness.make_org()
        async with harness.reader(org) as uow:
            with pytest.raises(ReadOnlyError):
                await uow.import_rows(User, [user_row()])
            assert await uow.count(User) == 0
        assert await _count(harness, org) == 0


__all__ = ["ImportsContract", "user_row"]
