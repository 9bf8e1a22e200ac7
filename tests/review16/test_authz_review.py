"""Review 16: attacks on the domain's authorization (issue 16), once per adapter.

Memory, SQLite and PostgreSQL (the contract suite's `harness`): privilege escalation,
actors who may not act, the last active administrator (also under concurrency), content
and content rules (`record_login`: `test_authz_review_login.py`). A refused call must
write nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from attrs import define

from edu_domain.errors import (
    ConcurrencyConflict,
    InvalidState,
    PermissionDenied,
    RetryableError,
    ValidationError,
)
from edu_domain.model import (
    EducationalContent,
    Organization,
    User,
    UserRole,
    UserStatus,
)
from edu_domain.query import Query
from edu_domain.services import Deps, EduCore, NewContent, NewUser, Scope, SecurityPolicy
from edu_infra.memory import FastHasher, SequentialTokens
from edu_infra.system import Uuid7Generator
from edu_infra.testing import Harness

pytestmark = pytest.mark.parametrize(
    "harness",
    ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)
PASSWORD = "correct horse battery"
POLICY = SecurityPolicy(session_ttl=timedelta(days=1), session_max_ttl=timedelta(days=30))
A, ST, T, TA, S, P = (
    UserRole.ADMIN,
    UserRole.STAFF,
    UserRole.TEACHER,
    UserRole.TEACHING_ASSISTANT,
    UserRole.STUDENT,
    UserRole.PARENT,
)
ACTIVE_ADMINS = Query.where(role=A, status=UserStatus.ACTIVE)
Call = Callable[[], Awaitable[Any]]


@define
class School:
    """One organization on one adapter, with members made by the system."""

    harness: Harness
    core: EduCore
    org: Organization

    @property
    def system(self) -> Scope:
        return Scope.system(self.org.id)

    async def member(
        self, name: str, role: UserRole, status: UserStatus = UserStatus.ACTIVE
    ) -> Scope:
        account = await self.core.users.register(
            self.system,
            NewUser(
                email=f"{name}@{self.org.slug}.example.org",
                username=name,
                password=PASSWORD,
                role=role,
                status=status,
                email_verified=status is not UserStatus.PENDING,
            ),
            send_verification=False,
        )
        return Scope(self.org.id, account.user.id)

    async def rows(self) -> dict[UUID, tuple[Any, ...]]:
        """Every user's and content's stored state, deleted ones included."""
        async with self.harness.uow(self.org) as uow:
            users = await uow.find(User, include_deleted=True)
            content = await uow.find(EducationalContent, include_deleted=True)
        return {
            **{u.id: (u.role, u.status, u.email, u.deleted_at, u.version) for u in users.items},
            **{c.id: (c.status, c.deleted_at, c.version) for c in content.items},
        }

    async def active_admins(self) -> int:
        async with self.harness.uow(self.org) as uow:
            return await uow.count(User, ACTIVE_ADMINS)


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


async def school(harness: Harness, core: EduCore | None = None) -> School:
    return School(harness, core or core_on(harness), await harness.make_org())


def uid(scope: Scope) -> UUID:
    assert scope.actor_id is not None
    return scope.actor_id


async def refused(s: School, calls: list[Call], *errors: type[Exception]) -> None:
    """Each call raises one of `errors` (default PermissionDenied) and writes nothing."""
    kinds = errors or (PermissionDenied,)
    for number, call in enumerate(calls):
        before = await s.rows()
        try:
            result = await call()
        except kinds:
            pass
        else:
            pytest.fail(f"call {number} was allowed: {result!r}")
        assert await s.rows() == before, f"call {number} wrote"


# ---------------------------------------------------------------------- escalation


async def test_nobody_grants_or_takes_a_role_above_their_own(harness: Harness) -> None:
    s = await school(harness)
    admin = await s.member("boss", A)
    staff, teacher = await s.member("sam", ST), await s.member("edna", T)
    student, parent = await s.member("bart", S), await s.member("marge", P)
    u, c = s.core.users, s.core.content
    gone = await s.member("gone", A)
    assert await u.delete(admin, uid(gone))

    def new(name: str, role: UserRole) -> NewUser:
        return NewUser(email=f"{name}@x.org", username=name, password=PASSWORD, role=role)

    await refused(
        s,
        [
            lambda: u.update(teacher, uid(teacher), {"role": "admin"}),
            lambda: u.update(teacher, uid(student), {"role": "teacher"}),
            lambda: u.register(teacher, new("t1", S)),
            lambda: u.register(staff, new("s1", ST)),
            lambda: u.register(staff, new("s2", A)),
            lambda: u.create_many(staff, [new("s3", S), new("s4", A)]),
            lambda: u.update(staff, uid(teacher), {"role": "staff"}),
            lambda: u.update(staff, uid(teacher), {"role": UserRole.ADMIN}),
            lambda: u.update(staff, uid(staff), {"role": "admin"}),
            lambda: u.update(staff, uid(staff), {"status": "active"}),
            lambda: u.update(staff, uid(admin), {"full_name": "Pwned"}),
            lambda: u.update(staff, uid(admin), {"email": "mine@x.org"}),
            lambda: u.delete(staff, uid(admin)),
            lambda: u.delete(staff, uid(gone), hard=True),
            lambda: u.restore(staff, uid(gone)),
            lambda: s.core.verification.mark_verified(staff, uid(admin)),
            lambda: s.core.auth.revoke_all_sessions(staff, uid(admin)),
            lambda: s.core.auth.get_active_sessions(teacher, uid(student)),
            lambda: u.update(student, uid(student), {"role": "admin"}),
            lambda: u.update(student, uid(student), {"full_name": "B", "role": "admin"}),
            lambda: u.update(student, uid(student), {"email": "b2@x.org"}),
            lambda: u.update(student, uid(student), {"status": "active"}),
            lambda: u.update_profile(student, uid(teacher), {"bio": "mine"}),
            lambda: s.core.organizations.rename(staff, "Staff Town"),
            lambda: c.create_draft(parent, NewContent(title="Parent notes")),
            lambda: u.statistics(teacher),
            lambda: s.core.auth.count_active_sessions(student),
        ],
    )
    # spellings the entity would not take are refused too (never stored as a role)
    for spelled in ("ADMIN", " admin", "Admin", 5):
        await refused(
            s,
            [lambda r=spelled: u.update(staff, uid(teacher), {"role": r})],
            PermissionDenied,
            ValidationError,
        )


async def test_who_is_no_active_member_does_not_act(harness: Harness) -> None:
    s, elsewhere = await school(harness), await school(harness)
    admin = await s.member("boss", A)
    actors = {
        "suspended": await s.member("sus", A, UserStatus.SUSPENDED),
        "deactivated": await s.member("deac", A, UserStatus.DEACTIVATED),
        "deleted": await s.member("del", A),
        "foreign admin": Scope(s.org.id, uid(await elsewhere.member("alien", A))),
        "organization id": Scope(s.org.id, s.org.id),
    }
    assert await s.core.users.delete(admin, uid(actors["deleted"]))
    draft = await s.core.content.create_draft(admin, NewContent(title="Lesson", body="x"))
    actors["content id"] = Scope(s.org.id, draft.id)
    u = s.core.users
    for name, actor in actors.items():
        (
            await refused(
                s,
                [
                    lambda a=actor: u.register(
                        a, NewUser(email="n@x.org", username="nn", password=PASSWORD, role=A)
                    ),
                    lambda a=actor: u.update(a, uid(admin), {"role": "student"}),
                    lambda a=actor: u.get(a, uid(admin)),  # cached actor path
                    lambda a=actor: u.statistics(a),  # cached actor path
                    lambda a=actor: s.core.content.get_by_slug(a, draft.slug),  # cached too
                    lambda a=actor: s.core.content.publish(a, draft.id),
                    lambda a=actor: s.core.auth.record_login(a, uid(admin)),
                ],
            ),
            name,
        )


# ---------------------------------------------------------------------- the last administrator


async def test_the_last_active_admin_stays_whatever_else_is_there(harness: Harness) -> None:
    """Pending, suspended and soft-deleted admins and another organization's admin do not
    count; every way of removing the one active admin is refused, the system's too."""
    s, elsewhere = await school(harness), await school(harness)
    admin = await s.member("boss", A)
    await s.member("pending", A, UserStatus.PENDING)
    await s.member("sus", A, UserStatus.SUSPENDED)
    deleted = await s.member("del", A)
    assert await s.core.users.delete(admin, uid(deleted))
    await elsewhere.member("alien", A)
    u, target = s.core.users, uid(admin)
    changes: list[dict[str, Any]] = [
        {"role": role} for role in ("staff", "teacher", "student", "parent")
    ] + [{"status": st} for st in ("suspended", "deactivated", "pending")]
    changes.append({"role": "admin", "status": "suspended"})
    calls: list[Call] = []
    for actor in (admin, s.system):
        calls += [lambda a=actor, ch=ch: u.update(a, target, ch) for ch in changes]
    calls += [
        lambda: u.delete(s.system, target),
        lambda: u.delete(s.system, target, hard=True),
        lambda: u.delete(admin, target),  # own account (InvalidState too)
    ]
    await refused(s, calls, InvalidState, ValidationError)  # pending: never set again
    assert await s.active_admins() == 1


async def test_a_restored_or_verified_admin_counts_again(harness: Harness) -> None:
    s = await school(harness)
    admin, second = await s.member("boss", A), await s.member("second", A)
    pending = await s.member("pending", A, UserStatus.PENDING)
    assert await s.core.users.delete(admin, uid(second))
    await refused(
        s, [lambda: s.core.users.update(admin, uid(admin), {"role": "staff"})], InvalidState
    )
    await s.core.users.restore(admin, uid(second))
    await s.core.users.update(admin, uid(admin), {"role": "staff"})  # second is active again
    assert await s.active_admins() == 1
    await s.core.verification.mark_verified(second, uid(pending))  # pending -> active
    await s.core.users.update(second, uid(second), {"status": "deactivated"})
    assert await s.active_admins() == 1


async def test_the_last_admin_cannot_lock_the_organization_out_by_email(harness: Harness) -> None:
    """A new address is unverified, and sign-in needs a verified one: the last verified
    administrator's email change is refused (once another one is verified, it is not)."""
    s = await school(harness)
    admin = await s.member("boss", A)
    await refused(
        s,
        [lambda: s.core.users.update(admin, uid(admin), {"email": "typo@exampel.org"})],
        InvalidState,
    )
    result = await s.core.auth.authenticate(Scope(s.org.id), "boss", PASSWORD)
    assert result.token
    await s.member("second", A)
    changed = await s.core.users.update(admin, uid(admin), {"email": "new@example.org"})
    assert not changed.email_verified


# ---------------------------------------------------------------------- races

MIXED: dict[str, tuple[Callable[[EduCore, Scope, UUID], Awaitable[Any]], ...]] = {
    "delete vs demote": (
        lambda c, s, o: c.users.delete(s, o),
        lambda c, s, o: c.users.update(s, o, {"role": "teacher"}),
    ),
    "suspend vs hard delete": (
        lambda c, s, o: c.users.update(s, o, {"status": "suspended"}),
        lambda c, s, o: c.users.delete(s, o, hard=True),
    ),
    "demote self vs demote other": (
        lambda c, s, o: c.users.update(s, uid(s), {"role": "staff"}),
        lambda c, s, o: c.users.update(s, o, {"role": "staff"}),
    ),
}


#: What the loser may see. SQLite adds ConcurrencyConflict when both changes write the same
#: user (no row lock there: the second flush finds a newer version).
LOSING = (PermissionDenied, InvalidState, RetryableError, ConcurrencyConflict)


@pytest.mark.parametrize("race", list(MIXED))
async def test_mixed_races_keep_an_admin(harness: Harness, race: str) -> None:
    """Two admins, two different changes at once (the shipped race test only pairs equal
    ones): at least one active admin remains, and a loser fails with a domain error."""
    s = await school(harness)
    first, second = await s.member("one", A), await s.member("two", A)
    one, two = MIXED[race]
    for _ in range(3):
        results = await asyncio.gather(
            one(s.core, first, uid(second)),
            two(s.core, second, uid(first)),
            return_exceptions=True,
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        assert all(isinstance(f, LOSING) for f in failures), results
        assert await s.active_admins() >= 1, results
        if await s.active_admins() == 2:
            continue
        async with harness.uow(s.org) as uow:  # put both back for the next round
            for user in (await uow.find(User, include_deleted=True)).items:
                if user.deleted_at is not None:
                    await uow.restore(user)
                user.role, user.status = A, UserStatus.ACTIVE
            await uow.commit()


async def test_three_admins_rotating_demotions_keep_one(harness: Harness) -> None:
    s = await school(harness)
    admins = [await s.member(n, A) for n in ("adm1", "adm2", "adm3")]
    results = await asyncio.gather(
        *(
            s.core.users.update(admins[i], uid(admins[(i + 1) % 3]), {"role": "teacher"})
            for i in range(3)
        ),
        return_exceptions=True,
    )
    assert await s.active_admins() >= 1, results


# ---------------------------------------------------------------------- content


async def test_content_rules_hold_for_the_caller_not_the_author(harness: Harness) -> None:
    s = await school(harness)
    admin, staff = await s.member("boss", A), await s.member("sam", ST)
    teacher, other_teacher = await s.member("edna", T), await s.member("hoover", T)
    assistant, student = await s.member("tina", TA), await s.member("bart", S)
    c = s.core.content
    hers = await c.create_draft(teacher, NewContent(title="Fractions", body="x"))
    own_ta = await c.create_draft(assistant, NewContent(title="TA notes", body="x"))
    own_student = await c.create_draft(student, NewContent(title="Essay", body="x"))
    assert await c.delete(student, own_student.id)
    await refused(
        s,
        [
            lambda: c.publish(other_teacher, hers.id),
            lambda: c.publish(assistant, own_ta.id),
            lambda: c.publish(student, hers.id),
            lambda: c.archive(student, hers.id),
            lambda: c.update(other_teacher, hers.id, {"title": "Mine now"}),
            lambda: c.delete(student, hers.id),
            lambda: c.delete(staff, hers.id, hard=True),
            lambda: c.delete(teacher, hers.id, hard=True),
            lambda: c.restore(student, own_student.id),
            lambda: c.restore(teacher, own_student.id),
            lambda: c.create_draft(student, NewContent(title="Forged", author_id=uid(teacher))),
        ],
    )
    await s.core.users.update(admin, uid(teacher), {"role": "student"})
    await refused(s, [lambda: c.publish(teacher, hers.id)])  # demoted: her role now decides
    assert (await c.publish(staff, hers.id)).status.value == "published"
