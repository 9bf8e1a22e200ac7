"""Who acts, and the rules the property test (`test_policy_table.py`) cannot show by outcome
alone: what a refusal says, that it writes nothing, the last administrator and lockout."""

from __future__ import annotations

import pytest

from edu_domain import (
    AccountLocked,
    AuthenticationFailed,
    InvalidState,
    PermissionDenied,
    ValidationError,
)
from edu_domain.model import UserRole, UserStatus, uuid7
from edu_domain.policy import CONTACT_FIELDS, Actor, sees_contact_details
from edu_domain.services import NewContent, NewUser, Scope
from tests.unit.conftest import PASSWORD, World


async def member(world: World, name: str, role: UserRole) -> Scope:
    return Scope(world.org.id, (await world.user(name, role=role)).user.id)


def new(name: str, role: UserRole = UserRole.STUDENT) -> NewUser:
    return NewUser(email=f"{name}@example.org", username=name, password=PASSWORD, role=role)


async def test_an_absent_actor_is_refused_and_told_how_to_act(world: World) -> None:
    anonymous = Scope(world.org.id)
    before = world.state()
    for call in (
        lambda: world.core.users.find(anonymous),
        lambda: world.core.users.register(anonymous, new("nina")),
        lambda: world.core.content.create_draft(anonymous, NewContent(title="T")),
        lambda: world.core.users.statistics(anonymous),
    ):
        with pytest.raises(PermissionDenied, match=r"Scope\.system\(org_id\)"):
            await call()
    assert world.state() == before
    await world.user("ann")  # self-authenticating use cases take the anonymous scope
    assert (await world.core.auth.authenticate(anonymous, "ann", PASSWORD)).token


async def test_a_system_scope_names_no_user() -> None:
    org = uuid7()
    assert Scope.system(org) == Scope(org, None, is_system=True)
    assert Scope.anonymous(org) == Scope(org)
    with pytest.raises(ValidationError) as error:
        Scope(org, uuid7(), is_system=True)
    assert error.value.field == "actor_id"
    with pytest.raises(ValidationError):
        Scope(org, is_system="yes")  # type: ignore[arg-type]


async def test_suspended_deleted_and_foreign_members_do_not_act(world: World) -> None:
    boss = await member(world, "boss", UserRole.ADMIN)
    teacher = await member(world, "edna", UserRole.TEACHER)
    assert teacher.actor_id is not None
    await world.core.users.find(teacher)
    await world.core.users.update(boss, teacher.actor_id, {"status": "suspended"})
    with pytest.raises(PermissionDenied, match="not an active member"):
        await world.core.users.find(teacher)
    await world.core.users.update(boss, teacher.actor_id, {"status": "active"})
    await world.core.users.delete(boss, teacher.actor_id)
    with pytest.raises(PermissionDenied):
        await world.core.content.create_draft(teacher, NewContent(title="Mine"))
    other = await world.new_org()
    stranger = (await world.user("stranger", org=other, role=UserRole.ADMIN)).user
    with pytest.raises(PermissionDenied):
        await world.core.users.find(Scope(world.org.id, stranger.id))


async def test_staff_manage_the_roles_below_theirs_and_grant_no_higher(world: World) -> None:
    boss = await member(world, "boss", UserRole.ADMIN)
    staff = await member(world, "willie", UserRole.STAFF)
    teacher = (await world.core.users.register(staff, new("edna", UserRole.TEACHER))).user
    before = world.state()
    for refused in (
        lambda: world.core.users.register(staff, new("peer", UserRole.STAFF)),
        lambda: world.core.users.register(staff, new("chief", UserRole.ADMIN)),
        lambda: world.core.users.update(staff, teacher.id, {"role": "staff"}),
        lambda: world.core.users.update(staff, staff.actor_id, {"role": "admin"}),  # type: ignore[arg-type]
        lambda: world.core.users.update(staff, boss.actor_id, {"full_name": "X"}),  # type: ignore[arg-type]
        lambda: world.core.users.delete(staff, boss.actor_id),  # type: ignore[arg-type]
    ):
        with pytest.raises(PermissionDenied):
            await refused()
    assert world.state() == before
    demoted = await world.core.users.update(staff, teacher.id, {"role": "teaching_assistant"})
    assert demoted.role is UserRole.TEACHING_ASSISTANT
    promoted = await world.core.users.update(boss, teacher.id, {"role": "admin"})
    assert promoted.role is UserRole.ADMIN


async def test_everyone_changes_their_own_name_but_not_their_role(world: World) -> None:
    kid = await member(world, "bart", UserRole.STUDENT)
    assert kid.actor_id is not None
    renamed = await world.core.users.update(kid, kid.actor_id, {"full_name": "El Barto"})
    assert renamed.full_name == "El Barto"
    with pytest.raises(PermissionDenied):
        await world.core.users.update(kid, kid.actor_id, {"role": "teacher"})
    with pytest.raises(PermissionDenied, match="may not change a student"):
        await world.core.users.update(kid, kid.actor_id, {"full_name": "x", "email": "b@x.org"})


async def test_the_last_active_administrator_stays(world: World) -> None:
    boss = await member(world, "boss", UserRole.ADMIN)
    assert boss.actor_id is not None
    before = world.state()
    for changes in ({"role": "teacher"}, {"status": "suspended"}, {"email": "b2@x.org"}):
        with pytest.raises(InvalidState, match="at least one active administrator"):
            await world.core.users.update(boss, boss.actor_id, changes)
    with pytest.raises(ValidationError, match="pending is the state of a new account"):
        await world.core.users.update(boss, boss.actor_id, {"status": "pending"})
    with pytest.raises(InvalidState):
        await world.core.users.delete(world.scope, boss.actor_id)  # the system neither
    with pytest.raises(InvalidState):
        await world.core.users.delete(world.scope, boss.actor_id, hard=True)
    with pytest.raises(InvalidState, match="cannot delete itself"):
        await world.core.users.delete(boss, boss.actor_id)
    assert world.state() == before
    deputy = await member(world, "deputy", UserRole.ADMIN)
    await world.core.users.update(deputy, boss.actor_id, {"role": "teacher"})
    with pytest.raises(InvalidState):  # now the deputy is the last one
        await world.core.users.update(deputy, deputy.actor_id, {"status": "deactivated"})  # type: ignore[arg-type]


async def test_a_suspended_admin_does_not_count(world: World) -> None:
    boss = await member(world, "boss", UserRole.ADMIN)
    sleeper = (await world.user("sleeper", role=UserRole.ADMIN)).user
    await world.core.users.update(boss, sleeper.id, {"status": "suspended"})
    with pytest.raises(InvalidState):
        await world.core.users.update(boss, boss.actor_id, {"role": "staff"})  # type: ignore[arg-type]
    await world.core.users.update(boss, sleeper.id, {"status": "active"})
    staff = await world.core.users.update(boss, boss.actor_id, {"role": "staff"})  # type: ignore[arg-type]
    assert staff.role is UserRole.STAFF


async def test_the_last_admin_can_be_locked_out_for_a_while_but_not_out_of_reach(
    world: World,
) -> None:
    """Lockout is allowed for every account: refusing it for the last administrator would
    give an attacker unlimited guesses at the most valuable password. It is temporary, it
    leaves open sessions working, and a password reset lifts it at once."""
    boss = await member(world, "boss", UserRole.ADMIN)
    session = await world.core.auth.authenticate(world.scope, "boss", PASSWORD)
    policy = world.core.deps.policy
    for _ in range(policy.max_failed_logins - 1):
        with pytest.raises(AuthenticationFailed):
            await world.core.auth.authenticate(world.scope, "boss", "wrong password")
    with pytest.raises(AccountLocked):
        await world.core.auth.authenticate(world.scope, "boss", "wrong password")
    with pytest.raises(AccountLocked):
        await world.core.auth.authenticate(world.scope, "boss", PASSWORD)
    assert (await world.core.auth.resolve(session.token)).user_id == boss.actor_id
    assert (await world.core.users.statistics(boss)).by_role == {"admin": 1}
    await world.core.auth.request_password_reset(world.scope, "boss@example.org")
    token = world.notifier.last("reset", "boss@example.org").token
    await world.core.auth.reset_password(world.scope, token, "a new long password")
    assert (await world.core.auth.authenticate(world.scope, "boss", "a new long password")).token
    user = await world.core.users.get(world.scope, boss.actor_id)  # type: ignore[arg-type]
    assert user.status is UserStatus.ACTIVE and user.locked_until is None


async def test_content_roles_parents_create_nothing_staff_author_for_others(world: World) -> None:
    parent = await member(world, "marge", UserRole.PARENT)
    kid = await member(world, "bart", UserRole.STUDENT)
    staff = await member(world, "willie", UserRole.STAFF)
    with pytest.raises(PermissionDenied, match="parent may not create"):
        await world.core.content.create_draft(parent, NewContent(title="Hi"))
    with pytest.raises(PermissionDenied, match="another author"):
        await world.core.content.create_draft(
            kid, NewContent(title="Theirs", author_id=staff.actor_id)
        )
    before = world.state()
    with pytest.raises(PermissionDenied, match="parent may not be the author"):
        await world.core.content.create_draft(  # it would give her the author's rights
            staff, NewContent(title="For Marge", author_id=parent.actor_id)
        )
    assert world.state() == before
    essay = await world.core.content.create_draft(
        staff, NewContent(title="For Bart", body="Text.", author_id=kid.actor_id)
    )
    assert essay.author_id == kid.actor_id
    with pytest.raises(PermissionDenied, match="hard-delete"):
        await world.core.content.delete(staff, essay.id, hard=True)
    assert await world.core.content.delete(kid, essay.id)  # the author soft-deletes
    with pytest.raises(PermissionDenied):
        await world.core.content.restore(kid, essay.id)
    assert (await world.core.content.restore(staff, essay.id)).deleted_at is None


async def test_sessions_passwords_and_sign_ins_are_the_users_own(world: World) -> None:
    boss = await member(world, "boss", UserRole.ADMIN)
    kid = await member(world, "bart", UserRole.STUDENT)
    lisa = (await world.user("lisa")).user
    await world.core.auth.authenticate(world.scope, "lisa", PASSWORD)
    for refused in (
        lambda: world.core.auth.get_active_sessions(kid, lisa.id),
        lambda: world.core.auth.revoke_all_sessions(kid, lisa.id),
        lambda: world.core.auth.change_password(boss, lisa.id, PASSWORD, "another password"),
        lambda: world.core.auth.record_login(boss, lisa.id),
        lambda: world.core.auth.count_active_sessions(kid),
    ):
        with pytest.raises(PermissionDenied):
            await refused()
    assert await world.core.auth.revoke_all_sessions(boss, lisa.id) == 1
    opened = await world.core.auth.record_login(Scope(world.org.id, lisa.id), lisa.id)
    assert opened.session.user_id == lisa.id
    assert await world.core.auth.count_active_sessions(boss) == 1


def test_contact_details_are_seen_by_staff_roles_and_by_their_owner() -> None:
    me, other = uuid7(), uuid7()
    assert CONTACT_FIELDS == ("email", "email_verified_at", "last_login_at")
    for role in (UserRole.STUDENT, UserRole.PARENT):
        assert not sees_contact_details(Actor.member(me, role), other)
        assert sees_contact_details(Actor.member(me, role), me)
    for role in (UserRole.TEACHING_ASSISTANT, UserRole.TEACHER, UserRole.STAFF, UserRole.ADMIN):
        assert sees_contact_details(Actor.member(me, role), other)
    assert sees_contact_details(Actor.system(), other)
