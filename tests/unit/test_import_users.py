"""`users.import_users`: plain rows by the bulk import verb, each with a default profile;
administrators only (the policy table), all or nothing, no per-user event."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from edu_domain import AlreadyExists, PermissionDenied, ValidationError
from edu_domain.imports import CHUNK
from edu_domain.model import User, UserProfile, UserRole
from edu_domain.query import Query
from edu_domain.services import Scope
from tests.unit.conftest import World


def rows(count: int, **fields: Any) -> Iterator[dict[str, Any]]:
    for i in range(count):
        yield {
            "email": f"imp{i}@example.org",
            "username": f"imp{i}",
            "hashed_password": "fast$v2$1$00",
            **fields,
        }


async def _counts(world: World) -> tuple[int, int]:
    async with world.core.deps.uow(tenant=world.org.id) as uow:
        return await uow.count(User), await uow.count(UserProfile)


async def test_the_system_imports_users_each_with_a_profile(world: World) -> None:
    assert await world.core.users.import_users(world.scope, rows(CHUNK + 3)) == CHUNK + 3
    assert await _counts(world) == (CHUNK + 3, CHUNK + 3)
    async with world.core.deps.uow(tenant=world.org.id) as uow:
        user = await uow.first(User, Query.where(username="imp7"))
        assert user is not None and user.role is UserRole.STUDENT
        profile = await uow.first(UserProfile, Query.where(user_id=user.id))
    assert profile is not None and profile.locale == "en"
    assert world.events.events == []  # as create_many: no per-user event


async def test_an_administrator_imports_any_role(world: World) -> None:
    admin = await world.user("root", role=UserRole.ADMIN)
    scope = Scope(world.org.id, admin.user.id)
    assert await world.core.users.import_users(scope, rows(3, role="admin")) == 3


@pytest.mark.parametrize("role", [UserRole.STAFF, UserRole.TEACHER, UserRole.STUDENT])
async def test_only_administrators_import(world: World, role: UserRole) -> None:
    member = await world.user("member", role=role)
    before = world.state()
    with pytest.raises(PermissionDenied):
        await world.core.users.import_users(Scope(world.org.id, member.user.id), rows(2))
    assert world.state() == before


async def test_a_bad_row_anywhere_imports_nothing(world: World) -> None:
    await world.user("taken")

    def mixed() -> Iterator[dict[str, Any]]:
        yield from rows(CHUNK + 1)
        yield {"email": "taken@example.org", "username": "fresh", "hashed_password": "h$1"}

    before = world.state()
    with pytest.raises(AlreadyExists) as caught:
        await world.core.users.import_users(world.scope, mixed())
    assert caught.value.field == "email"
    assert world.state() == before
    with pytest.raises(ValidationError) as invalid:
        await world.core.users.import_users(world.scope, rows(1, email="x"))
    assert invalid.value.field == "email"
    with pytest.raises(ValidationError) as not_rows:
        await world.core.users.import_users(world.scope, ["not a row"])
    assert not_rows.value.field == "rows"
    assert world.state() == before
