"""Review 16b: a suspended organization, through the read cache, a transaction and the
token flows that need no session (memory, SQLite, PostgreSQL; cached: the example's
container with its in-memory cache, and PostgreSQL with Redis)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import UUID

import pytest

from edu_domain.errors import InvalidToken, PermissionDenied
from edu_domain.model import Organization, User
from edu_domain.model.events import EmailVerificationRequested, PasswordResetRequested
from edu_domain.services import EduCore, NewContent, NewUser, Scope
from edu_infra.testing import Harness
from tests.e2e.api import Api, running_api
from tests.e2e.stack import CORE_FACTORIES
from tests.review16.test_authz_review import PASSWORD, ST, A, S, T, refused, school, uid
from tests.review16b.test_last_admin_paths import in_one_transaction

HARNESSES = pytest.mark.parametrize(
    "harness",
    ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)


async def set_suspended(core: EduCore, org_id: UUID, suspended: bool) -> None:
    """What a host does: change the organization in a unit of work of the core's factory."""
    async with core.deps.uow.unscoped() as uow:
        org = await uow.require(Organization, org_id)
        org.suspend() if suspended else org.activate()
        await uow.commit()


@pytest.fixture(
    params=["memory", "sqlite", pytest.param("postgres+redis", marks=pytest.mark.postgres)]
)
async def cached_api(request: pytest.FixtureRequest) -> AsyncIterator[Api]:
    async with running_api(CORE_FACTORIES[request.param]) as running:
        yield running


async def test_cached_reads_stop_for_members_once_the_organization_is_suspended(
    cached_api: Api,
) -> None:
    """users.get, content.get_by_slug and statistics read the actor and the organization
    through the cache: entries cached before the suspension must not let members read on."""
    api = cached_api
    admin = await api.bootstrap("springfield")
    staff = await api.member(admin, "skinner", "staff")
    teacher = await api.member(admin, "edna", "teacher")
    draft = await api.draft(teacher, "Fractions")
    org_id = (await api.core.organizations.get_by_slug("springfield")).id
    as_teacher, as_staff = Scope(org_id, teacher.id), Scope(org_id, staff.id)
    reads = [
        lambda: api.core.users.get(as_teacher, admin.id),
        lambda: api.core.users.get(as_teacher, teacher.id),
        lambda: api.core.content.get_by_slug(as_teacher, draft["slug"]),
        lambda: api.core.users.statistics(as_staff),
    ]
    for read in reads * 2:  # the second round is served from the cache
        await read()
    await set_suspended(api.core, org_id, True)
    for read in reads:
        with pytest.raises(PermissionDenied):  # a read served to a member
            await read()
    paths = [f"/users/{admin.id}", f"/content/by-slug/{draft['slug']}"]
    for path in paths:
        assert (await api.client.get(path, headers=teacher.auth)).status_code == 401
    stats = await api.client.get("/organizations/current/statistics", headers=staff.auth)
    assert stats.status_code == 401
    await set_suspended(api.core, org_id, False)  # reactivated: the same reads work again
    for read in reads:
        await read()


@HARNESSES
async def test_a_transaction_in_a_suspended_organization_commits_nothing_for_members(
    harness: Harness,
) -> None:
    s = await school(harness)
    admin, teacher = await s.member("boss", A), await s.member("edna", T)
    await set_suspended(s.core, s.org.id, True)
    steps = [
        lambda tx: tx.content.create_draft(teacher, NewContent(title="Plans", body="x")),
        lambda tx: tx.users.update(admin, uid(teacher), {"role": "staff"}),
        lambda tx: tx.users.register(
            admin, NewUser(email="n@x.example.org", username="newbie", password=PASSWORD)
        ),
        lambda tx: tx.organizations.rename(admin, "Renamed"),
    ]
    for number, step in enumerate(steps):
        before = await s.rows()
        with pytest.raises(PermissionDenied):
            await in_one_transaction(s, admin, step)
        assert await s.rows() == before, number
    async with s.core.transaction(s.system) as tx:  # the system still repairs it
        await tx.users.update(s.system, uid(teacher), {"role": "staff"})
    async with harness.uow(s.org) as uow:
        assert (await uow.require(User, uid(teacher))).role is ST


@HARNESSES
async def test_token_flows_change_nothing_in_a_suspended_organization(harness: Harness) -> None:
    s = await school(harness)
    admin, bart = await s.member("boss", A), await s.member("bart", S)
    pending = await s.core.users.register(
        admin, NewUser(email="p@x.example.org", username="pending", password=PASSWORD)
    )
    verify = [e for e in harness.publisher.events if isinstance(e, EmailVerificationRequested)]
    await s.core.auth.request_password_reset(Scope(s.org.id), f"bart@{s.org.slug}.example.org")
    reset = [e for e in harness.publisher.events if isinstance(e, PasswordResetRequested)]
    await set_suspended(s.core, s.org.id, True)
    harness.reset_recorders()
    anonymous = Scope(s.org.id)
    await refused(
        s,
        [
            lambda: s.core.verification.verify_email(anonymous, verify[-1].token),
            lambda: s.core.auth.reset_password(anonymous, reset[-1].token, "brand new one 42"),
        ],
        PermissionDenied,
        InvalidToken,
    )
    await s.core.auth.request_password_reset(anonymous, f"boss@{s.org.slug}.example.org")
    assert not [e for e in harness.publisher.events if isinstance(e, PasswordResetRequested)]
    assert pending.user.id and uid(bart)
