"""Regressions found in review: each bad input gets a domain error (or silence) and nothing else."""

from __future__ import annotations

import base64
from types import MappingProxyType

import pytest

from edu_domain import InvalidToken, Query, ValidationError
from edu_domain.model import UserRole, uuid7
from edu_domain.services import NewContent, Scope
from edu_domain.services.auth import _Snapshot
from tests.unit.conftest import PASSWORD, World


async def test_a_deeply_nested_cursor_is_a_validation_error(world: World) -> None:
    cursor = base64.urlsafe_b64encode(b"[" * 3000).decode().rstrip("=")
    with pytest.raises(ValidationError) as error:
        await world.core.users.find(world.scope, Query().after(cursor, 5))
    assert error.value.field == "cursor"


async def test_updating_tags_with_a_dict_is_refused_not_converted(world: World) -> None:
    teacher = (await world.user("teach", role=UserRole.TEACHER)).user
    scope = Scope(world.org.id, teacher.id)
    draft = await world.core.content.create_draft(scope, NewContent(title="T", tags=["a"]))
    with pytest.raises(ValidationError):
        await world.core.content.update(scope, draft.id, {"tags": {"python": 1}})
    assert (await world.core.content.get(scope, draft.id)).tags == ("a",)


async def test_metadata_with_a_nested_non_dict_mapping_is_a_validation_error(world: World) -> None:
    teacher = (await world.user("teach", role=UserRole.TEACHER)).user
    scope = Scope(world.org.id, teacher.id)
    with pytest.raises(ValidationError):
        await world.core.content.create_draft(
            scope, NewContent(title="T", metadata={"inner": MappingProxyType({"a": 1})})
        )


async def test_session_tokens_with_a_malformed_jti_are_invalid_tokens(world: World) -> None:
    await world.user("alice")
    token = (await world.core.auth.authenticate(world.scope, "alice", PASSWORD)).token
    org, _, secret = token.split(".")
    for jti in ("a\x00b", "\ud800", "not-hex-" * 4):
        with pytest.raises(InvalidToken):
            await world.core.auth.resolve(f"{org}.{jti}.{secret}")


async def test_reset_request_for_a_nul_address_says_nothing(world: World) -> None:
    await world.core.auth.request_password_reset(world.scope, "a\x00@example.org")
    assert world.notifier.sent == []


def test_the_login_snapshot_hides_the_hash() -> None:
    assert "secret-hash" not in repr(_Snapshot(uuid7(), "secret-hash"))
