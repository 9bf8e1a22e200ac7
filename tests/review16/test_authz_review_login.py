"""Review 16: `record_login` with a caller-given jti and expiry, and who may record a login
(memory, SQLite, PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest

from edu_domain.errors import AlreadyExists, InvalidToken, NotFound, ValidationError
from edu_domain.model import LoginSession, UserStatus
from edu_domain.services import Scope
from edu_infra.testing import Harness
from tests.review16.test_authz_review import POLICY, A, S, refused, school, uid

pytestmark = pytest.mark.parametrize(
    "harness",
    ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)


async def test_record_login_odd_but_valid_jtis_round_trip(harness: Harness) -> None:
    s = await school(harness)
    ada, bob = await s.member("ada", S), await s.member("bob", S)
    for jti in ("a+b/c=d:e~f_g-h", "x" * 64, "ABC", "abc", "0"):
        result = await s.core.auth.record_login(ada, uid(ada), jti=jti)
        assert result.session.jti == jti
        principal = await s.core.auth.resolve(result.token)
        assert (principal.user_id, principal.session_id) == (uid(ada), result.session.id)
    await refused(s, [lambda: s.core.auth.record_login(bob, uid(bob), jti="ABC")], AlreadyExists)


async def test_record_login_expiry_edges(harness: Harness) -> None:
    s = await school(harness)
    ada = await s.member("ada", S)
    now, auth = harness.clock.now(), s.core.auth
    bad = [
        now,
        now - timedelta(seconds=1),
        now + POLICY.session_max_ttl + timedelta(microseconds=1),
    ]
    bad.append(now.replace(tzinfo=None) + timedelta(hours=1))
    for expires in bad:
        with pytest.raises(ValidationError) as error:
            await auth.record_login(ada, uid(ada), expires_at=expires)
        assert error.value.field == "expires_at"
    far_east = timezone(timedelta(hours=14))
    edge = (now + POLICY.session_max_ttl).astimezone(far_east)
    result = await auth.record_login(ada, uid(ada), expires_at=edge)
    async with harness.uow(s.org) as uow:
        stored = await uow.require(LoginSession, result.session.id)
    assert stored.expires_at == edge
    harness.clock.advance(days=30)
    with pytest.raises(InvalidToken):  # expired at exactly the edge
        await auth.resolve(result.token)


async def test_record_login_is_the_user_themself_in_their_organization(harness: Harness) -> None:
    s, elsewhere = await school(harness), await school(harness)
    admin, ada = await s.member("boss", A), await s.member("ada", S)
    sus = await s.member("sus", S, UserStatus.SUSPENDED)
    alien = await elsewhere.member("alien", S)
    auth = s.core.auth
    await refused(
        s,
        [
            lambda: auth.record_login(admin, uid(ada)),
            lambda: auth.record_login(ada, uid(admin)),
            lambda: auth.record_login(Scope(s.org.id), uid(ada)),
            lambda: auth.record_login(s.system, uid(sus)),
            lambda: auth.record_login(sus, uid(sus)),
        ],
    )
    await refused(s, [lambda: auth.record_login(s.system, uid(alien))], NotFound)
