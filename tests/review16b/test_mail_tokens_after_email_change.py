"""Review 16b: a mailed token proves control of the address it was sent to, not of the
account's address at the time it is used (memory, SQLite, PostgreSQL). The last-admin fix
rests on "a new address is unverified until its link is followed": the link of the old one
must not do."""

from __future__ import annotations

import pytest

from edu_domain.errors import InvalidToken
from edu_domain.model import User
from edu_domain.model.events import EmailVerificationRequested, PasswordResetRequested
from edu_domain.services import NewUser, Scope
from edu_infra.testing import Harness
from tests.review16.test_authz_review import PASSWORD, A, S, refused, school, uid

pytestmark = pytest.mark.parametrize(
    "harness",
    ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)


def mailed(
    harness: Harness, kind: type[EmailVerificationRequested | PasswordResetRequested], to: str
) -> str:
    tokens = [e.token for e in harness.publisher.events if isinstance(e, kind) and e.email == to]
    assert tokens, f"no {kind.__name__} mailed to {to}"
    return tokens[-1]


async def test_an_old_addresses_verification_link_does_not_verify_a_new_address(
    harness: Harness,
) -> None:
    s = await school(harness)
    admin = await s.member("boss", A)
    account = await s.core.users.register(
        admin, NewUser(email="old@x.example.org", username="bart", password=PASSWORD, role=S)
    )
    old_link = mailed(harness, EmailVerificationRequested, "old@x.example.org")
    await s.core.users.update(admin, account.user.id, {"email": "someone.else@y.example.org"})
    await refused(
        s, [lambda: s.core.verification.verify_email(Scope(s.org.id), old_link)], InvalidToken
    )
    async with harness.uow(s.org) as uow:
        assert not (await uow.require(User, account.user.id)).email_verified


async def test_an_address_change_voids_reset_links_mailed_to_the_old_address(
    harness: Harness,
) -> None:
    s = await school(harness)
    admin, bart = await s.member("boss", A), await s.member("bart", S)
    old = f"bart@{s.org.slug}.example.org"
    await s.core.auth.request_password_reset(Scope(s.org.id), old)
    old_link = mailed(harness, PasswordResetRequested, old)
    await s.core.users.update(admin, uid(bart), {"email": "bart@new.example.org"})
    await refused(
        s,
        [lambda: s.core.auth.reset_password(Scope(s.org.id), old_link, "attacker chosen 42")],
        InvalidToken,
    )
    async with harness.uow(s.org) as uow:
        user = await uow.require(User, uid(bart))
    assert s.core.deps.hasher.verify(PASSWORD, user.hashed_password)


async def test_the_new_addresses_link_verifies_it(harness: Harness) -> None:
    """What must keep working once old links die: the link mailed to the new address."""
    s = await school(harness)
    admin, bart = await s.member("boss", A), await s.member("bart", S)
    await s.core.users.update(admin, uid(bart), {"email": "bart@new.example.org"})
    link = mailed(harness, EmailVerificationRequested, "bart@new.example.org")
    user = await s.core.verification.verify_email(Scope(s.org.id), link)
    assert user.email == "bart@new.example.org" and user.email_verified
