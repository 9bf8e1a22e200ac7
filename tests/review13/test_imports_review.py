"""Review 13: `UnitOfWork.import_rows` attacked as a user and as a tenant's attacker, on every
adapter (memory, SQLite, PostgreSQL with and without row-level security): cross-tenant
references, colliding ids, hostile values, failing generators, the same unit of work's later
work, and the parity of domain errors. Breaks are strict xfails; the rest pins guarantees that
held under attack and had no test."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from edu_domain.errors import AlreadyExists, DomainError, NotFound, TenantViolation, ValidationError
from edu_domain.imports import CHUNK
from edu_domain.model import (
    EducationalContent,
    LoginSession,
    Organization,
    User,
    UserProfile,
)
from edu_infra.testing.harness import Harness, new_user, unique_name
from edu_infra.testing.uow_imports import user_row


async def _users(harness: Harness, org: Organization) -> dict[UUID, tuple[Any, ...]]:
    async with harness.uow(org) as uow:
        found = await uow.find(User, include_deleted=True)
    return {u.id: (u.email, u.full_name, u.deleted_at, u.version) for u in found.items}


async def _counts(harness: Harness, org: Organization) -> tuple[int, int, int, int]:
    async with harness.uow(org) as uow:
        return (
            await uow.count(User, include_deleted=True),
            await uow.count(UserProfile, include_deleted=True),
            await uow.count(LoginSession, include_deleted=True),
            await uow.count(EducationalContent, include_deleted=True),
        )


def _no_driver_text(error: BaseException) -> None:
    assert isinstance(error, DomainError), repr(error)
    text = str(error).lower()
    for word in ("insert", "copy", "select", "asyncpg", "sqlite", "constraint", "violates"):
        assert word not in text, str(error)


def _cross_rows(harness: Harness, victim: UUID) -> dict[str, tuple[type[Any], dict[str, Any]]]:
    return {
        "profile": (UserProfile, {"user_id": victim}),
        "session": (
            LoginSession,
            {
                "user_id": victim,
                "jti": unique_name("jti"),
                "token_hash": "h" * 64,
                "expires_at": harness.clock.now() + timedelta(days=1),
            },
        ),
        "content": (
            EducationalContent,
            {"author_id": victim, "title": "Stolen", "slug": unique_name("stolen")},
        ),
    }


# ------------------------------------------------------------ cross-tenant rows


@pytest.mark.parametrize("kind", ["profile", "session", "content"])
async def test_a_row_referring_to_another_tenants_user_is_not_found_on_every_adapter(
    harness: Harness, kind: str
) -> None:
    org, other = await harness.make_org(), await harness.make_org()
    victim = await harness.make_user(other)
    cls, row = _cross_rows(harness, victim.id)[kind]
    async with harness.uow(org) as uow:
        with pytest.raises(NotFound) as caught:
            await uow.import_rows(cls, [row])
        _no_driver_text(caught.value)
    assert await _counts(harness, org) == (0, 0, 0, 0)
    assert await _counts(harness, other) == (1, 0, 0, 0)


@pytest.mark.parametrize("kind", ["profile", "content"])
async def test_an_unscoped_import_cannot_tie_a_row_to_another_organizations_user(
    harness: Harness, kind: str
) -> None:
    org, other = await harness.make_org(), await harness.make_org()
    victim = await harness.make_user(other)
    cls, row = _cross_rows(harness, victim.id)[kind]
    async with harness.factory.unscoped() as uow:
        with pytest.raises(NotFound):
            await uow.import_rows(cls, [{**row, "organization_id": org.id}])
    assert await _counts(harness, org) == (0, 0, 0, 0)


async def test_an_unscoped_import_into_a_missing_organization_is_not_found(
    harness: Harness,
) -> None:
    async with harness.factory.unscoped() as uow:
        with pytest.raises(NotFound) as caught:
            await uow.import_rows(User, [user_row(organization_id=uuid4())])
        _no_driver_text(caught.value)


async def test_an_id_of_another_tenants_user_is_already_exists_and_leaves_it_alone(
    harness: Harness,
) -> None:
    org, other = await harness.make_org(), await harness.make_org()
    victim = await harness.make_user(other)
    before = await _users(harness, other)
    async with harness.uow(org) as uow:
        with pytest.raises(AlreadyExists) as caught:
            await uow.import_rows(User, [user_row(id=victim.id, email="mine@example.org")])
        _no_driver_text(caught.value)
    assert caught.value.field == "id"
    assert await _users(harness, other) == before
    assert await _counts(harness, org) == (0, 0, 0, 0)


async def test_a_tenant_cannot_import_organizations(harness: Harness) -> None:
    """Its own id exists already; any other id names another organization."""
    org = await harness.make_org()
    async with harness.uow(org) as uow:
        with pytest.raises(TenantViolation):
            await uow.import_rows(Organization, [{"name": "Evil", "slug": unique_name("evil")}])
    async with harness.uow(org) as uow:
        with pytest.raises(AlreadyExists):
            await uow.import_rows(
                Organization, [{"id": org.id, "name": "Evil", "slug": unique_name("evil")}]
            )
    async with harness.factory.unscoped() as uow:
        assert await uow.count(Organization, include_deleted=True) >= 1
        stored = await uow.require(Organization, org.id)
    assert stored.name == org.name


# ------------------------------------------------------------ hostile values


@pytest.mark.parametrize(
    ("cls", "field", "value"),
    [
        (EducationalContent, "tags", [["math"]]),
        (EducationalContent, "tags", [{"math": 1}]),
        (UserProfile, "skills", [["python"]]),
    ],
)
async def test_a_nested_structure_in_a_list_field_is_a_validation_error(
    harness: Harness, cls: type[Any], field: str, value: object
) -> None:
    org = await harness.make_org()
    author = await harness.make_user(org)
    base: dict[str, Any] = (
        {"user_id": author.id}
        if cls is UserProfile
        else {"author_id": author.id, "title": "T", "slug": unique_name("nested")}
    )
    async with harness.uow(org) as uow:
        with pytest.raises(ValidationError) as caught:
            await uow.import_rows(cls, [{**base, field: value}])
    assert caught.value.field == field
    assert await _counts(harness, org) == (1, 0, 0, 0)


async def test_an_object_given_for_tags_is_a_validation_error(harness: Harness) -> None:
    org = await harness.make_org()
    author = await harness.make_user(org)
    row = {"author_id": author.id, "title": "T", "slug": unique_name("obj"), "tags": {"math": 1}}
    async with harness.uow(org) as uow:
        with pytest.raises(ValidationError) as caught:
            await uow.import_rows(EducationalContent, [row])
    assert caught.value.field == "tags"


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"email": "a\x00b@example.org"}, "email"),
        ({"full_name": "a\ud800b"}, "full_name"),
        ({"username": "ab\u200bcd"}, "username"),
        ({"email": "\uff41nn@example.org"}, "email"),
        ({"full_name": "x" * 100_000}, "full_name"),
        ({"email": ["a@example.org"]}, "email"),
        ({"role": {"admin": True}}, "role"),
        ({"failed_login_count": 2**40}, "failed_login_count"),
        ({"email_verified": "true"}, "email_verified"),
        ({"id": "0190b4a1-0000-7000-8000-000000000000"}, "id"),
    ],
)
async def test_hostile_user_values_are_the_same_validation_error_everywhere(
    harness: Harness, bad: dict[str, Any], field: str
) -> None:
    org = await harness.make_org()
    row = {**user_row(), **bad}
    async with harness.uow(org) as uow:
        with pytest.raises(ValidationError) as caught:
            await uow.import_rows(User, [row])
        _no_driver_text(caught.value)
    assert caught.value.field == field
    assert await _counts(harness, org) == (0, 0, 0, 0)


@pytest.mark.parametrize(
    "metadata",
    [
        {"a\x00": 1},
        {"a": "x\x00"},
        {"a": float("nan")},
        {"a": 2**70},
        {"a": {1, 2}},
        {1: "x"},
        {"a": "\ud800"},
    ],
)
async def test_hostile_json_is_a_validation_error_everywhere(
    harness: Harness, metadata: dict[Any, Any]
) -> None:
    org = await harness.make_org()
    author = await harness.make_user(org)
    row = {"author_id": author.id, "title": "T", "slug": unique_name("j"), "metadata": metadata}
    async with harness.uow(org) as uow:
        with pytest.raises(ValidationError) as caught:
            await uow.import_rows(EducationalContent, [row])
        _no_driver_text(caught.value)
    assert caught.value.field == "metadata"


async def test_json_the_caller_changes_after_the_import_is_not_what_is_stored(
    harness: Harness,
) -> None:
    org = await harness.make_org()
    author = await harness.make_user(org)
    metadata: dict[str, Any] = {"level": {"grade": 3}, "list": [1]}
    row = {"author_id": author.id, "title": "T", "slug": unique_name("m"), "metadata": metadata}
    async with harness.uow(org) as uow:
        await uow.import_rows(EducationalContent, [row])
        metadata["level"]["grade"] = 99
        metadata["list"].append(2)
        row["title"] = "Changed"
        await uow.commit()
    async with harness.uow(org) as uow:
        stored = await uow.first(EducationalContent)
    assert stored is not None
    assert (stored.title, stored.metadata) == ("T", {"level": {"grade": 3}, "list": [1]})


# ------------------------------------------------------------ failures and the same unit of work


@pytest.mark.parametrize("before_failure", [3, CHUNK + 3])
async def test_a_generator_that_raises_keeps_nothing_of_the_import(
    harness: Harness, before_failure: int
) -> None:
    """The caller's own error reaches the caller unchanged; no row of the import is kept,
    and what the unit of work did before is rolled back with it, as for a bad row."""
    org = await harness.make_org()

    def rows() -> Iterator[dict[str, Any]]:
        for _ in range(before_failure):
            yield user_row()
        raise RuntimeError("the caller's CSV reader failed")

    async with harness.uow(org) as uow:
        await uow.add(new_user(org))
        with pytest.raises(RuntimeError, match="CSV reader"):
            await uow.import_rows(User, rows())
        after = new_user(org)
        await uow.add(after)
        await uow.commit()
    assert set(await _users(harness, org)) == {after.id}


async def test_an_imported_id_cannot_be_added_again_in_the_same_unit_of_work(
    harness: Harness,
) -> None:
    org = await harness.make_org()
    first, second = uuid4(), uuid4()
    for attempt in ("add", "add_all"):
        async with harness.uow(org) as uow:
            await uow.import_rows(User, [user_row(id=first), user_row(id=second)])
            twin = new_user(org, id=first)
            write = uow.add(twin) if attempt == "add" else uow.add_all([twin])
            with pytest.raises(AlreadyExists) as caught:
                await write
            assert caught.value.field == "id"
    assert await _counts(harness, org) == (0, 0, 0, 0)


async def test_imported_rows_can_be_deleted_and_a_hard_deleted_id_imported_again(
    harness: Harness,
) -> None:
    org = await harness.make_org()
    soft, hard = uuid4(), uuid4()
    async with harness.uow(org) as uow:
        await uow.import_rows(User, [user_row(id=soft), user_row(id=hard, username="was-hard")])
        await uow.import_rows(UserProfile, [{"user_id": hard}])
        await uow.delete(await uow.require(User, soft))
        await uow.delete(await uow.require(User, hard), hard=True)  # its profile cascades
        await uow.import_rows(User, [user_row(id=hard, username="was-hard")])
        again = await uow.require(User, hard)
        assert again.username == "was-hard"
        await uow.commit()
    async with harness.uow(org) as uow:
        with pytest.raises(AlreadyExists):  # soft-deleted: its row is still there
            await uow.import_rows(User, [user_row(id=soft)])
    users = await _users(harness, org)
    assert set(users) == {soft, hard}
    assert users[soft][2] is not None and users[hard][2] is None
    assert await _counts(harness, org) == (2, 0, 0, 0)
