"""Review 16: statuses the policy does not look at when it decides who acts (memory, SQLite,
PostgreSQL). Both are questions for the lead as much as breaks: the expected outcome below
is the reviewer's reading of the README's invariants."""

from __future__ import annotations

import pytest

from edu_domain.errors import ValidationError
from edu_domain.model import Organization, UserStatus
from edu_domain.services import NewContent, NewUser, Scope
from edu_infra.testing import Harness
from tests.review16.test_authz_review import PASSWORD, A, T, refused, school, uid

pytestmark = pytest.mark.parametrize(
    "harness",
    ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)


async def test_an_admin_is_never_set_back_to_pending(harness: Harness) -> None:
    """Pending is a new account's state until it is verified: an account sent back to it
    would act while the last-administrator invariant no longer counts it."""
    s = await school(harness)
    admin, second = await s.member("boss", A), await s.member("second", A)
    await refused(
        s,
        [lambda: s.core.users.update(admin, uid(second), {"status": UserStatus.PENDING})],
        ValidationError,
    )
    assert await s.active_admins() == 2
    signed_in = Scope(s.org.id, uid(second))
    new = NewUser(email="z@x.org", username="zed", password=PASSWORD, role=A)
    assert (await s.core.users.register(signed_in, new)).user.role is A


async def test_members_of_a_suspended_organization_do_not_act(harness: Harness) -> None:
    s = await school(harness)
    admin, teacher = await s.member("boss", A), await s.member("edna", T)
    session = await s.core.auth.record_login(teacher, uid(teacher))
    draft = await s.core.content.create_draft(teacher, NewContent(title="Plans", body="x"))
    async with harness.factory.unscoped() as uow:
        (await uow.require(Organization, s.org.id)).suspend()
        await uow.commit()
    await refused(
        s,
        [
            lambda: s.core.content.publish(teacher, draft.id),
            lambda: s.core.users.update(admin, uid(teacher), {"role": "staff"}),
            lambda: s.core.auth.resolve(session.token),
        ],
        Exception,
    )
