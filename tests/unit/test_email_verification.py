"""Email verification by single-use expiring token, and by an administrator."""

from __future__ import annotations

from datetime import timedelta

import pytest

from edu_domain import InvalidToken, NotFound
from edu_domain.model import EmailVerified, UserStatus, uuid7
from edu_domain.services import Scope
from tests.unit.conftest import World


async def test_verify_email_activates_the_user_and_emits_event(world: World) -> None:
    alice = (await world.user("alice", verified=False)).user
    token = world.notifier.last("verify", "alice@example.org").token
    world.clock.advance(hours=1)
    user = await world.core.verification.verify_email(world.scope, token)
    assert user.id == alice.id
    assert user.email_verified and user.status is UserStatus.ACTIVE
    assert user.email_verified_at == world.clock.now()
    assert [e.user_id for e in world.events.of_type(EmailVerified)] == [alice.id]  # type: ignore[attr-defined]


async def test_verification_token_is_single_use(world: World) -> None:
    await world.user("alice", verified=False)
    token = world.notifier.last("verify").token
    await world.core.verification.verify_email(world.scope, token)
    with pytest.raises(InvalidToken):
        await world.core.verification.verify_email(world.scope, token)


async def test_verification_token_expires(world: World) -> None:
    await world.user("alice", verified=False)
    token = world.notifier.last("verify").token
    world.clock.advance(world.core.deps.policy.verification_ttl + timedelta(seconds=1))
    with pytest.raises(InvalidToken):
        await world.core.verification.verify_email(world.scope, token)


async def test_tampered_or_foreign_tokens_are_invalid(world: World) -> None:
    await world.user("alice", verified=False)
    token = world.notifier.last("verify").token
    token_id, secret = token.split(".")
    other = await world.new_org()
    for bad in (
        f"{token_id}.{secret}x",
        f"{uuid7().hex}.{secret}",
        token_id,
        "",
        "a.b.c",
        f"{token_id[:-1]}g.{secret}",
        "x" * 10_000,
    ):
        with pytest.raises(InvalidToken):
            await world.core.verification.verify_email(world.scope, bad)
    with pytest.raises(InvalidToken):
        await world.core.verification.verify_email(Scope(other.id), token)
    await world.core.verification.verify_email(world.scope, token)


async def test_reset_token_cannot_verify_an_email(world: World) -> None:
    await world.user("alice", verified=False)
    await world.core.auth.request_password_reset(world.scope, "alice@example.org")
    reset = world.notifier.last("reset").token
    with pytest.raises(InvalidToken):
        await world.core.verification.verify_email(world.scope, reset)


async def test_admin_mark_verified_is_idempotent(world: World) -> None:
    alice = (await world.user("alice", verified=False)).user
    assert await world.core.verification.mark_verified(world.scope, alice.id)
    assert not await world.core.verification.mark_verified(world.scope, alice.id)
    with pytest.raises(NotFound):
        await world.core.verification.mark_verified(world.scope, uuid7())


async def test_resend_issues_a_new_token_until_verified(world: World) -> None:
    alice = (await world.user("alice", verified=False)).user
    assert await world.core.verification.resend(world.scope, alice.id)
    assert await world.core.verification.pending_tokens(world.scope, alice.id) == 2
    await world.core.verification.verify_email(world.scope, world.notifier.last("verify").token)
    assert await world.core.verification.pending_tokens(world.scope, alice.id) == 1
    assert not await world.core.verification.resend(world.scope, alice.id)
