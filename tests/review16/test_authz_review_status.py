"""Review 16: statuses the policy does not look at when it decides who acts (memory, SQLite,
PostgreSQL). Both are questions for the lead as much as breaks: the expected outcome below
is the reviewer's reading of the README's invariants."""

from __future__ import annotations

import pytest

from edu_domain.errors import PermissionDenied
from edu_domain.model import Organization, UserStatus
from edu_domain.services import NewContent, NewUser, Scope
from edu_infra.testing import Harness
from tests.review16.test_authz_review import PASSWORD, A, T, refused, school, uid

pytestmark = pytest.mark.parametrize(
    "harness",
    ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)


@pytest.mark.xfail(
    strict=True,
    reason="review16 INCONSISTENCY: an admin set back to pending no longer counts as an active"
    " administrator (the invariant refuses it for the last one), yet with a verified address"
    " they still sign in and act with every administrator right",
)
async def test_an_admin_set_back_to_pending_does_not_act_as_one(harness: Harness) -> None:
    s = await school(harness)
    admin, second = await s.member("boss", A), await s.member("second", A)
    await s.core.users.update(admin, uid(second), {"status": UserStatus.PENDING})
    assert await s.active_admins() == 1
    signed_in = Scope(s.org.id, uid(second))
    new = NewUser(email="z@x.org", username="zed", password=PASSWORD, role=A)
    await refused(s, [lambda: s.core.users.register(signed_in, new)])
    with pytest.raises(PermissionDenied):
        await s.core.auth.authenticate(Scope(s.org.id), "second", PASSWORD)


@pytest.mark.xfail(
    strict=True,
    reason="review16 QUESTION: sign-in and register refuse a suspended organization, but its"
    " members (and their open sessions: resolve does not look) keep acting: publish, change"
    " roles",
)
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
