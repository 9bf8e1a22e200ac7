"""Review 16b: other roads to an organization whose administrators cannot sign in or act
(memory, SQLite, PostgreSQL): deletes while sign-in needs a verified address, and several
changes composed in one `core.transaction`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from edu_domain.errors import InvalidState, InvalidToken, PermissionDenied
from edu_domain.model import User, UserStatus
from edu_domain.query import Query
from edu_domain.services import NewUser, Scope, Transaction
from edu_infra.testing import Harness
from tests.review16.test_authz_review import PASSWORD, POLICY, A, School, T, refused, school, uid

pytestmark = pytest.mark.parametrize(
    "harness",
    ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)
VERIFIED_ADMINS = Query.where(role=A, status=UserStatus.ACTIVE, email_verified=True)


async def verified_admins(s: School) -> int:
    async with s.harness.uow(s.org) as uow:
        return await uow.count(User, VERIFIED_ADMINS)


async def unverified_admin(s: School, name: str) -> Scope:
    """An active administrator whose address is not verified (so who cannot sign in)."""
    account = await s.core.users.register(
        s.system,
        NewUser(
            email=f"{name}@{s.org.slug}.example.org",
            username=name,
            password=PASSWORD,
            role=A,
            status=UserStatus.ACTIVE,
            email_verified=False,
        ),
        send_verification=False,
    )
    return Scope(s.org.id, account.user.id)


async def in_one_transaction(
    s: School, scope: Scope, *steps: Callable[[Transaction], Awaitable[Any]]
) -> None:
    async with s.core.transaction(scope) as tx:
        for step in steps:
            await step(tx)


async def test_the_last_verified_admin_is_not_deleted_while_only_unverified_ones_remain(
    harness: Harness,
) -> None:
    assert POLICY.require_verified_email  # the default: sign-in needs a verified address
    s = await school(harness)
    boss = await s.member("boss", A)
    second = await s.member("second", A)
    # a verified admin's address is changed (allowed: boss is verified); the second admin's
    # open session ends with it (sign-in needs a verified address), and update would refuse
    # them demoting the boss...
    session = await s.core.auth.record_login(second, uid(second))
    await s.core.users.update(boss, uid(second), {"email": "second@new.example.org"})
    with pytest.raises(InvalidToken):
        await s.core.auth.resolve(session.token)
    await refused(
        s, [lambda: s.core.users.update(second, uid(boss), {"role": "teacher"})], InvalidState
    )
    await unverified_admin(s, "unver")
    # ...but deleting the last verified administrator goes through, by them or the system
    await refused(
        s,
        [
            lambda: s.core.users.delete(second, uid(boss)),
            lambda: s.core.users.delete(s.system, uid(boss)),
            lambda: s.core.users.delete(s.system, uid(boss), hard=True),
        ],
        InvalidState,
    )
    assert await verified_admins(s) == 1


async def test_changes_that_only_together_remove_the_last_admin_commit_nothing(
    harness: Harness,
) -> None:
    """Each step alone is allowed; the transaction counts what its earlier steps did."""
    s = await school(harness)
    boss, second = await s.member("boss", A), await s.member("second", A)
    steps = {
        "suspend, then demote": (
            lambda tx: tx.users.update(s.system, uid(second), {"status": "suspended"}),
            lambda tx: tx.users.update(s.system, uid(boss), {"role": "teacher"}),
        ),
        "delete, then delete": (
            lambda tx: tx.users.delete(s.system, uid(second)),
            lambda tx: tx.users.delete(s.system, uid(boss)),
        ),
        "new address, then new address": (
            lambda tx: tx.users.update(s.system, uid(second), {"email": "x2@new.example.org"}),
            lambda tx: tx.users.update(s.system, uid(boss), {"email": "x1@new.example.org"}),
        ),
        "demote, then deactivate (by the other admin)": (
            lambda tx: tx.users.update(boss, uid(second), {"role": "staff"}),
            lambda tx: tx.users.update(second, uid(boss), {"status": "deactivated"}),
        ),
    }
    for name, (first, then) in steps.items():
        before = await s.rows()
        with pytest.raises((InvalidState, PermissionDenied)):
            await in_one_transaction(s, s.system, first, then)
        assert await s.rows() == before, name
        assert await verified_admins(s) == 2, name


async def test_an_actor_demoted_earlier_in_a_transaction_acts_with_the_new_role(
    harness: Harness,
) -> None:
    s = await school(harness)
    boss, _second = await s.member("boss", A), await s.member("second", A)
    teacher = await s.member("edna", T)
    before = await s.rows()
    with pytest.raises(PermissionDenied):
        await in_one_transaction(
            s,
            boss,
            lambda tx: tx.users.update(boss, uid(boss), {"role": "teacher"}),
            lambda tx: tx.users.update(boss, uid(teacher), {"role": "admin"}),
        )
    assert await s.rows() == before
    with pytest.raises(PermissionDenied):
        await in_one_transaction(
            s,
            boss,
            lambda tx: tx.users.update(boss, uid(boss), {"status": "suspended"}),  # second stays
            lambda tx: tx.users.update(boss, uid(teacher), {"full_name": "Edna K"}),
        )
    assert await s.rows() == before


async def test_a_pending_admin_never_stands_in_for_the_last_active_one(harness: Harness) -> None:
    """A pending administrator, made by `register` or `create_many`, is not counted."""
    s = await school(harness)
    boss = await s.member("boss", A)
    await s.member("pend1", A, UserStatus.PENDING)
    new = NewUser(
        email="p2@x.example.org",
        username="pend2",
        password=PASSWORD,
        role=A,
        status=UserStatus.PENDING,
    )
    await s.core.users.create_many(boss, [new])
    await refused(
        s,
        [
            lambda: s.core.users.update(s.system, uid(boss), {"status": "suspended"}),
            lambda: s.core.users.update(s.system, uid(boss), {"email": "b@new.example.org"}),
            lambda: s.core.users.delete(s.system, uid(boss)),
        ],
        InvalidState,
    )
