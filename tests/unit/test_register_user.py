"""Registering users: user + profile in one transaction, hashing, verification mail."""

from __future__ import annotations

import pytest

from edu_domain import AlreadyExists, NotFound, ValidationError
from edu_domain.model import (
    EmailVerificationRequested,
    User,
    UserProfile,
    UserRegistered,
    UserRole,
    UserStatus,
)
from edu_domain.services import NewUser, Scope
from tests.unit.conftest import PASSWORD, World


async def test_register_creates_pending_user_and_profile_with_hashed_password(world: World) -> None:
    account = await world.core.users.register(
        world.scope,
        NewUser(
            email="Ada@Example.ORG",
            username="Ada",
            password=PASSWORD,
            full_name="Ada Lovelace",
            role=UserRole.TEACHER,
            bio="Counts things",
            skills=["Math", "Math", " Poetry "],
        ),
    )
    user, profile = account.user, account.profile
    assert profile is not None
    assert user.email == "ada@example.org"
    assert user.username == "ada"
    assert user.status is UserStatus.PENDING
    assert user.role is UserRole.TEACHER
    assert user.hashed_password != PASSWORD
    assert world.hasher.verify(PASSWORD, user.hashed_password)
    assert profile.user_id == user.id
    assert profile.skills == ("Math", "Poetry")
    assert user.version == 1 and user.created_at == world.clock.now()

    stored = await world.core.users.get_account(world.scope, user.id)
    assert stored.user.email == "ada@example.org"
    assert stored.profile is not None and stored.profile.bio == "Counts things"


async def test_register_mails_a_verification_link_after_commit(world: World) -> None:
    account = await world.core.users.register(
        world.scope, NewUser(email="bob@example.org", username="bob", password=PASSWORD)
    )
    mail = world.notifier.last("verify", "bob@example.org")
    assert mail.token.count(".") == 1
    assert mail.expires_at == world.clock.now() + world.core.deps.policy.verification_ttl
    kinds = [type(e) for e in world.events.events]
    assert UserRegistered in kinds and EmailVerificationRequested in kinds
    assert account.user.id in {getattr(e, "user_id", None) for e in world.events.events}


async def test_register_stores_only_a_hash_of_the_verification_token(world: World) -> None:
    await world.core.users.register(
        world.scope, NewUser(email="c@example.org", username="carol", password=PASSWORD)
    )
    token = world.notifier.last("verify").token
    secret = token.split(".")[1]
    dump = repr(world.state())
    assert secret not in dump


async def test_register_rejects_duplicate_email_ignoring_case(world: World) -> None:
    await world.user("dave")
    with pytest.raises(AlreadyExists) as error:
        await world.core.users.register(
            world.scope, NewUser(email="DAVE@example.org", username="dave2", password=PASSWORD)
        )
    assert error.value.field == "email"
    assert await world.core.users.count(world.scope) == 1


async def test_register_rejects_duplicate_username(world: World) -> None:
    await world.user("erin")
    with pytest.raises(AlreadyExists) as error:
        await world.core.users.register(
            world.scope, NewUser(email="other@example.org", username="ERIN", password=PASSWORD)
        )
    assert error.value.field == "username"


async def test_same_email_may_register_in_another_organization(world: World) -> None:
    other = await world.new_org()
    await world.user("frank")
    account = await world.user("frank", org=other)
    assert account.user.organization_id == other.id


async def test_register_with_invalid_input_changes_nothing(world: World) -> None:
    before = world.state()
    bad = [
        NewUser(email="not-an-email", username="gina", password=PASSWORD),
        NewUser(email="g@example.org", username="x", password=PASSWORD),
        NewUser(email="g@example.org", username="gina", password="short"),
        NewUser(email="g@example.org", username="gina", password=PASSWORD, full_name="a\x00b"),
        NewUser(email="g@example.org", username="gina", password=PASSWORD, avatar_url="ftp://x"),
        NewUser(email="g@example.org", username="gina", password=PASSWORD, timezone="Mars/Base"),
        NewUser(email="g@example.org", username="gina", password=PASSWORD, role="emperor"),
        NewUser(email="g@example.org", username="gina"),
    ]
    for new in bad:
        with pytest.raises(ValidationError):
            await world.core.users.register(world.scope, new)
    assert world.state() == before
    assert world.notifier.sent == []


async def test_register_into_unknown_organization_is_not_found(world: World) -> None:
    from edu_domain.model import uuid7

    with pytest.raises(NotFound):
        await world.core.users.register(
            Scope.system(uuid7()),
            NewUser(email="h@example.org", username="hank", password=PASSWORD),
        )


async def test_register_into_suspended_organization_is_refused(world: World) -> None:
    other = await world.new_org()
    async with world.core.deps.uow.unscoped() as uow:
        org = await uow.require(type(other), other.id)
        org.suspend()
        await uow.commit()
    with pytest.raises(ValidationError) as error:
        await world.user("ivan", org=other)
    assert error.value.field == "organization_id"


async def test_create_many_inserts_all_users_and_profiles_in_one_go(world: World) -> None:
    news = [
        NewUser(email=f"s{i}@example.org", username=f"student{i}", hashed_password="fast$v2$1$00")
        for i in range(25)
    ]
    accounts = await world.core.users.create_many(world.scope, news)
    assert len(accounts) == 25
    assert await world.core.users.count(world.scope) == 25
    async with world.core.deps.uow(tenant=world.org.id) as uow:
        assert await uow.count(UserProfile) == 25


async def test_create_many_is_all_or_nothing(world: World) -> None:
    await world.user("taken")
    news = [
        NewUser(email="new1@example.org", username="new1", password=PASSWORD),
        NewUser(email="taken@example.org", username="new2", password=PASSWORD),
    ]
    with pytest.raises(AlreadyExists):
        await world.core.users.create_many(world.scope, news)
    assert await world.core.users.count(world.scope) == 1
    assert await world.core.users.create_many(world.scope, []) == []


async def test_create_user_with_profile_is_register(world: World) -> None:
    account = await world.core.users.create_user_with_profile(
        world.scope, NewUser(email="j@example.org", username="jill", password=PASSWORD)
    )
    found = await world.core.users.get_by_email(world.scope, "J@EXAMPLE.ORG")
    assert found is not None and found.id == account.user.id
    assert isinstance(found, User)
