"""`auth.record_login` with the host's own `jti` and `expires_at` (the old data layer's
`record_login(session, user_id, ip, user_agent, token_jti, expires_at)`), once per adapter:
memory, SQLite and PostgreSQL (the `harness` fixture of `conftest.py`).

A jti is unique among an organization's live sessions (the `uq_login_sessions_jti` partial
index; the memory adapter's `LoginSession.__unique__`), revoked ones included; an expiry lies
in the future and at most `SecurityPolicy.session_max_ttl` ahead.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from edu_domain.errors import AlreadyExists, InvalidToken, ValidationError
from edu_domain.model import LoginSession, Organization, User, UserStatus
from edu_domain.services import Deps, EduCore, Scope, SecurityPolicy
from edu_infra.memory import FastHasher, SequentialTokens
from edu_infra.system import Uuid7Generator
from edu_infra.testing import Harness

#: Memory, SQLite and PostgreSQL (row-level security on: these are use cases, not the unit of
#: work's own tenant filter, which `postgres-app-filter` isolates).
pytestmark = pytest.mark.parametrize(
    "harness",
    ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)
POLICY = SecurityPolicy(session_ttl=timedelta(days=1), session_max_ttl=timedelta(days=30))
JWT_ID = "5c3f6d2e-8a41-4b7e-9d0c-2f1e7a6b9c80"


def core_on(harness: Harness) -> EduCore:
    return EduCore(
        Deps(
            uow=harness.factory,
            clock=harness.clock,
            ids=Uuid7Generator(),
            tokens=SequentialTokens(),
            hasher=FastHasher(),
            policy=POLICY,
        )
    )


async def member(harness: Harness, org: Organization, name: str) -> tuple[Scope, User]:
    user = await harness.make_user(
        org, username=name, status=UserStatus.ACTIVE, email_verified=True
    )
    return Scope(org.id, user.id), user


async def sessions(harness: Harness, org: Organization) -> list[LoginSession]:
    async with harness.uow(org) as uow:
        return list((await uow.find(LoginSession)).items)


async def stored_versions(harness: Harness, org: Organization) -> list[tuple[Any, int]]:
    return [(s.id, s.version) for s in await sessions(harness, org)]


async def test_the_hosts_jti_and_expiry_are_recorded(harness: Harness) -> None:
    core, org = core_on(harness), await harness.make_org()
    scope, user = await member(harness, org, "ada")
    expires = harness.clock.now() + timedelta(hours=2)
    result = await core.auth.record_login(
        scope, user.id, ip_address="10.0.0.7", jti=JWT_ID, expires_at=expires
    )
    assert (result.session.jti, result.session.expires_at) == (JWT_ID, expires)
    [stored] = await sessions(harness, org)
    assert (stored.jti, stored.expires_at, stored.ip_address) == (JWT_ID, expires, "10.0.0.7")
    assert (await core.auth.resolve(result.token)).session_id == stored.id
    harness.clock.advance(hours=2)
    with pytest.raises(InvalidToken):
        await core.auth.resolve(result.token)


async def test_without_them_the_core_chooses(harness: Harness) -> None:
    core, org = core_on(harness), await harness.make_org()
    scope, user = await member(harness, org, "ada")
    result = await core.auth.record_login(Scope.system(org.id), user.id)
    assert len(result.session.jti) == 32 and int(result.session.jti, 16) >= 0
    assert result.session.expires_at == harness.clock.now() + POLICY.session_ttl
    assert (await core.auth.resolve(result.token)).user_id == user.id == scope.actor_id


async def test_a_jti_is_unique_in_its_organization(harness: Harness) -> None:
    core = core_on(harness)
    org, other = await harness.make_org(), await harness.make_org()
    scope, user = await member(harness, org, "ada")
    second_scope, second = await member(harness, org, "bob")
    first = await core.auth.record_login(scope, user.id, jti=JWT_ID)
    await core.auth.revoke_session(scope, first.session.id)  # revoked: its jti stays taken
    before = await stored_versions(harness, org)
    with pytest.raises(AlreadyExists) as error:
        await core.auth.record_login(second_scope, second.id, jti=JWT_ID)
    assert error.value.field == "jti"
    assert await stored_versions(harness, org) == before  # nothing written, no half login
    async with harness.uow(org) as uow:
        assert (await uow.require(User, second.id)).last_login_at is None
    elsewhere_scope, elsewhere = await member(harness, other, "ada")
    assert (await core.auth.record_login(elsewhere_scope, elsewhere.id, jti=JWT_ID)).token


#: (jti, expires_at as an offset from now, or a wrong value) that record_login refuses.
BAD: list[tuple[Any, Any]] = [
    ("", None),
    ("a.b", None),  # the token's separator
    ("x" * 65, None),
    ("spaced out", None),
    (42, None),
    (None, timedelta(0)),
    (None, timedelta(seconds=-1)),
    (None, timedelta(days=30, seconds=1)),
    (None, "tomorrow"),
    (None, "naive"),
]


async def test_a_bad_jti_or_expiry_is_refused_and_writes_nothing(harness: Harness) -> None:
    core, org = core_on(harness), await harness.make_org()
    scope, user = await member(harness, org, "ada")
    now = harness.clock.now()
    for jti, ahead in BAD:
        expires: Any = now + ahead if isinstance(ahead, timedelta) else ahead
        if ahead == "naive":
            expires = (now + timedelta(hours=1)).replace(tzinfo=None)
        with pytest.raises(ValidationError) as error:
            await core.auth.record_login(scope, user.id, jti=jti, expires_at=expires)
        assert error.value.field == ("jti" if jti is not None else "expires_at"), (jti, ahead)
    assert await sessions(harness, org) == []


async def test_the_longest_allowed_expiry_in_any_zone(harness: Harness) -> None:
    core, org = core_on(harness), await harness.make_org()
    scope, user = await member(harness, org, "ada")
    zone = timezone(timedelta(hours=-5))
    latest: datetime = (harness.clock.now() + POLICY.session_max_ttl).astimezone(zone)
    result = await core.auth.record_login(scope, user.id, jti="jwt_~+/=:-1", expires_at=latest)
    [stored] = await sessions(harness, org)
    assert stored.expires_at == latest and stored.jti == result.session.jti
