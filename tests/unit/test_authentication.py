"""Logging in: credentials, lockout, rehash, sessions, logout, password change and reset."""

from __future__ import annotations

from datetime import timedelta

import pytest

from edu_domain import (
    AccountLocked,
    AuthenticationFailed,
    InvalidToken,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from edu_domain.model import SessionsRevoked, User, UserLockedOut, UserLoggedIn, UserRole, uuid7
from edu_infra.memory.fakes import FastHasher
from tests.unit.conftest import PASSWORD, World


async def test_authenticate_by_email_or_username_opens_a_session(world: World) -> None:
    alice = (await world.user("alice")).user
    world.clock.advance(minutes=3)
    result = await world.core.auth.authenticate(
        world.scope, "ALICE@example.org", PASSWORD, ip_address="10.0.0.1", user_agent="pytest"
    )
    session = result.session
    assert session.user_id == alice.id and session.ip_address == "10.0.0.1"
    assert session.user_agent == "pytest"
    assert session.expires_at == world.clock.now() + world.core.deps.policy.session_ttl
    assert session.token_hash not in result.token and result.token not in repr(result)
    await world.core.auth.authenticate(world.scope, "alice", PASSWORD)
    user = await world.core.users.get(world.scope, alice.id)
    assert user.last_login_at == world.clock.now()
    assert len(world.events.of_type(UserLoggedIn)) == 2


async def test_session_token_resolves_to_tenant_and_user(world: World) -> None:
    alice = (await world.user("alice", role=UserRole.TEACHER)).user
    result = await world.core.auth.authenticate(world.scope, "alice", PASSWORD)
    principal = await world.core.auth.resolve(result.token)
    assert (principal.organization_id, principal.user_id) == (world.org.id, alice.id)
    assert principal.session_id == result.session.id and principal.role is UserRole.TEACHER


async def test_wrong_password_and_unknown_login_fail_alike(world: World) -> None:
    await world.user("alice")
    for login, password in (
        ("alice", "wrong password"),
        ("nobody", PASSWORD),
        ("", PASSWORD),
        ("a\x00", "x"),
    ):
        with pytest.raises(AuthenticationFailed) as error:
            await world.core.auth.authenticate(world.scope, login, password)
        assert str(error.value) == "invalid credentials"


async def test_repeated_failures_lock_the_account_for_the_policy_period(world: World) -> None:
    alice = (await world.user("alice")).user
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            await world.core.auth.authenticate(world.scope, "alice", "wrong password")
    with pytest.raises(AccountLocked) as locked:
        await world.core.auth.authenticate(world.scope, "alice", "wrong password")
    assert locked.value.until == world.clock.now() + timedelta(minutes=10)
    with pytest.raises(AccountLocked):
        await world.core.auth.authenticate(world.scope, "alice", PASSWORD)
    assert [e.user_id for e in world.events.of_type(UserLockedOut)] == [alice.id]  # type: ignore[attr-defined]
    world.clock.advance(minutes=10, seconds=1)
    await world.core.auth.authenticate(world.scope, "alice", PASSWORD)
    assert (await world.core.users.get(world.scope, alice.id)).failed_login_count == 0


async def test_a_success_resets_the_failure_counter(world: World) -> None:
    alice = (await world.user("alice")).user
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            await world.core.auth.authenticate(world.scope, "alice", "wrong password")
    await world.core.auth.authenticate(world.scope, "alice", PASSWORD)
    assert (await world.core.users.get(world.scope, alice.id)).failed_login_count == 0


async def test_outdated_hashes_are_upgraded_on_login(world: World) -> None:
    alice = (await world.user("alice")).user
    old = FastHasher(scheme="old").hash(PASSWORD)
    async with world.core.deps.uow(tenant=world.org.id) as uow:
        user = await uow.require(User, alice.id)
        user.hashed_password = old
        await uow.commit()
    await world.core.auth.authenticate(world.scope, "alice", PASSWORD)
    upgraded = (await world.core.users.get(world.scope, alice.id)).hashed_password
    assert upgraded.startswith("fast$v2$") and world.hasher.verify(PASSWORD, upgraded)


async def test_unverified_or_suspended_users_cannot_sign_in(world: World) -> None:
    await world.user("pending", verified=False)
    with pytest.raises(PermissionDenied):
        await world.core.auth.authenticate(world.scope, "pending", PASSWORD)
    bob = (await world.user("bob")).user
    await world.core.users.update(world.scope, bob.id, {"status": "suspended"})
    with pytest.raises(PermissionDenied):
        await world.core.auth.authenticate(world.scope, "bob", PASSWORD)


async def test_active_sessions_listing_and_revocation(world: World) -> None:
    alice = (await world.user("alice")).user
    first = await world.core.auth.authenticate(world.scope, "alice", PASSWORD)
    world.clock.advance(minutes=1)
    second = await world.core.auth.authenticate(world.scope, "alice", PASSWORD)
    sessions = await world.core.auth.get_active_sessions(world.scope, alice.id)
    assert [s.id for s in sessions] == [second.session.id, first.session.id]
    assert await world.core.auth.revoke_session(world.scope, first.session.id)
    assert not await world.core.auth.revoke_session(world.scope, first.session.id)
    with pytest.raises(InvalidToken):
        await world.core.auth.resolve(first.token)
    assert await world.core.auth.count_active_sessions(world.scope) == 1
    with pytest.raises(NotFound):
        await world.core.auth.revoke_session(world.scope, uuid7())


async def test_revoke_all_returns_the_count_and_kills_every_token(world: World) -> None:
    alice = (await world.user("alice")).user
    tokens = [
        (await world.core.auth.authenticate(world.scope, "alice", PASSWORD)).token for _ in range(3)
    ]
    assert await world.core.auth.invalidate_user_sessions(world.scope, alice.id) == 3
    assert await world.core.auth.revoke_all_sessions(world.scope, alice.id) == 0
    for token in tokens:
        with pytest.raises(InvalidToken):
            await world.core.auth.resolve(token)
    assert [e.count for e in world.events.of_type(SessionsRevoked)] == [3]  # type: ignore[attr-defined]


async def test_sessions_expire(world: World) -> None:
    await world.user("alice")
    result = await world.core.auth.authenticate(world.scope, "alice", PASSWORD)
    world.clock.advance(world.core.deps.policy.session_ttl)
    with pytest.raises(InvalidToken):
        await world.core.auth.resolve(result.token)


async def test_logout_revokes_the_session_of_the_token(world: World) -> None:
    await world.user("alice")
    result = await world.core.auth.authenticate(world.scope, "alice", PASSWORD)
    assert await world.core.auth.logout(result.token)
    with pytest.raises(InvalidToken):
        await world.core.auth.logout(result.token)


async def test_malformed_session_tokens_are_invalid(world: World) -> None:
    await world.user("alice")
    token = (await world.core.auth.authenticate(world.scope, "alice", PASSWORD)).token
    org, jti, secret = token.split(".")
    other = await world.new_org()
    for bad in (
        f"{org}.{jti}.{secret}0",
        f"{other.id.hex}.{jti}.{secret}",
        f"{org}.{jti}",
        "..",
        42,
        "z" * 600,
    ):
        with pytest.raises(InvalidToken):
            await world.core.auth.resolve(bad)  # type: ignore[arg-type]


async def test_record_login_opens_a_session_without_password(world: World) -> None:
    alice = (await world.user("alice")).user
    result = await world.core.auth.record_login(world.scope, alice.id, ip_address="::1")
    assert result.session.ip_address == "::1"
    with pytest.raises(ValidationError):
        await world.core.auth.record_login(world.scope, alice.id, ip_address="not an ip")


async def test_change_password_revokes_sessions_and_needs_the_current_one(world: World) -> None:
    alice = (await world.user("alice")).user
    old = await world.core.auth.authenticate(world.scope, "alice", PASSWORD)
    with pytest.raises(AuthenticationFailed):
        await world.core.auth.change_password(
            world.scope, alice.id, "wrong password", "new password 1"
        )
    with pytest.raises(ValidationError):
        await world.core.auth.change_password(world.scope, alice.id, PASSWORD, "short")
    assert (
        await world.core.auth.change_password(world.scope, alice.id, PASSWORD, "new password 1")
        == 1
    )
    with pytest.raises(InvalidToken):
        await world.core.auth.resolve(old.token)
    with pytest.raises(AuthenticationFailed):
        await world.core.auth.authenticate(world.scope, "alice", PASSWORD)
    await world.core.auth.authenticate(world.scope, "alice", "new password 1")


async def test_password_reset_by_single_use_token(world: World) -> None:
    alice = (await world.user("alice")).user
    session = await world.core.auth.authenticate(world.scope, "alice", PASSWORD)
    await world.core.auth.request_password_reset(world.scope, "Alice@Example.org")
    token = world.notifier.last("reset", "alice@example.org").token
    await world.core.auth.reset_password(world.scope, token, "brand new secret")
    await world.core.auth.authenticate(world.scope, "alice", "brand new secret")
    with pytest.raises(InvalidToken):
        await world.core.auth.reset_password(world.scope, token, "another secret 2")
    with pytest.raises(InvalidToken):
        await world.core.auth.resolve(session.token)
    assert (
        await world.core.users.get(world.scope, alice.id)
    ).password_changed_at == world.clock.now()


async def test_reset_tokens_die_when_the_password_changes(world: World) -> None:
    alice = (await world.user("alice")).user
    await world.core.auth.request_password_reset(world.scope, "alice@example.org")
    token = world.notifier.last("reset").token
    await world.core.auth.change_password(world.scope, alice.id, PASSWORD, "changed meanwhile")
    with pytest.raises(InvalidToken):
        await world.core.auth.reset_password(world.scope, token, "attacker password")


async def test_reset_tokens_expire(world: World) -> None:
    await world.user("alice")
    await world.core.auth.request_password_reset(world.scope, "alice@example.org")
    token = world.notifier.last("reset").token
    world.clock.advance(world.core.deps.policy.reset_ttl)
    with pytest.raises(InvalidToken):
        await world.core.auth.reset_password(world.scope, token, "brand new secret")


async def test_reset_request_for_unknown_email_says_nothing_and_sends_nothing(world: World) -> None:
    await world.core.auth.request_password_reset(world.scope, "ghost@example.org")
    await world.core.auth.request_password_reset(world.scope, "x" * 1000)
    assert world.notifier.sent == []


async def test_reset_clears_a_lockout(world: World) -> None:
    await world.user("alice")
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            await world.core.auth.authenticate(world.scope, "alice", "wrong password")
    with pytest.raises(AccountLocked):  # the third failure locks (max_failed_logins=3)
        await world.core.auth.authenticate(world.scope, "alice", "wrong password")
    with pytest.raises(AccountLocked):  # locked even for the right password
        await world.core.auth.authenticate(world.scope, "alice", PASSWORD)
    await world.core.auth.request_password_reset(world.scope, "alice@example.org")
    await world.core.auth.reset_password(
        world.scope, world.notifier.last("reset").token, "fresh start 1"
    )
    await world.core.auth.authenticate(world.scope, "alice", "fresh start 1")


async def test_secrets_never_appear_in_reprs(world: World) -> None:
    alice = (await world.user("alice")).user
    result = await world.core.auth.authenticate(world.scope, "alice", PASSWORD)
    texts = repr(alice) + repr(result) + repr(result.session) + repr(world.events.events)
    assert alice.hashed_password not in texts
    assert result.token not in texts and result.session.token_hash not in texts
    assert result.token.split(".")[2] not in texts


async def test_users_of_a_suspended_organization_cannot_sign_in(world: World) -> None:
    from edu_domain.model import Organization

    alice = (await world.user("alice")).user
    async with world.core.deps.uow(tenant=world.org.id) as uow:
        org = await uow.require(Organization, world.org.id)
        org.suspend()
        await uow.commit()
    with pytest.raises(PermissionDenied):
        await world.core.auth.authenticate(world.scope, "alice", PASSWORD)
    with pytest.raises(PermissionDenied):
        await world.core.auth.record_login(world.scope, alice.id)
    assert await world.core.auth.count_active_sessions(world.scope) == 0
