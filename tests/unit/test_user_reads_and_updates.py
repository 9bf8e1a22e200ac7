"""Reading, updating, deleting and restoring users."""

from __future__ import annotations

import pytest

from edu_domain import AlreadyExists, ConcurrencyConflict, NotFound, Query, ValidationError
from edu_domain.model import UserRole, UserStatus, uuid7
from edu_domain.services import Scope
from tests.unit.conftest import World


async def test_get_returns_the_user_and_not_found_for_unknown_ids(world: World) -> None:
    alice = (await world.user("alice")).user
    assert (await world.core.users.get(world.scope, alice.id)).username == "alice"
    with pytest.raises(NotFound):
        await world.core.users.get(world.scope, uuid7())


async def test_users_of_another_organization_are_invisible(world: World) -> None:
    other = await world.new_org()
    stranger = (await world.user("stranger", org=other)).user
    with pytest.raises(NotFound):
        await world.core.users.get(world.scope, stranger.id)
    assert await world.core.users.get_by_email(world.scope, "stranger@example.org") is None
    assert await world.core.users.get_by_username(world.scope, "stranger") is None
    assert await world.core.users.count(world.scope) == 0
    with pytest.raises(NotFound):
        await world.core.users.update(world.scope, stranger.id, {"full_name": "Hacked"})
    assert not await world.core.users.delete(world.scope, stranger.id)
    assert (await world.core.users.get(Scope.system(other.id), stranger.id)).full_name == "Stranger"


async def test_get_by_username_and_email_normalise_their_input(world: World) -> None:
    bob = (await world.user("bob")).user
    by_name = await world.core.users.get_by_username(world.scope, "  BOB ")
    by_mail = await world.core.users.get_by_email(world.scope, "Bob@Example.org")
    assert by_name is not None and by_name.id == bob.id
    assert by_mail is not None and by_mail.id == bob.id


async def test_get_active_users_filters_by_status_and_role_newest_first(world: World) -> None:
    await world.user("t01", role=UserRole.TEACHER)
    world.clock.advance(minutes=1)
    await world.user("s01")
    world.clock.advance(minutes=1)
    await world.user("s02")
    world.clock.advance(minutes=1)
    await world.user("pending", verified=False)
    page = await world.core.users.get_active_users(world.scope, role=UserRole.STUDENT)
    assert [u.username for u in page] == ["s02", "s01"]
    everyone = await world.core.users.get_active_users(world.scope, skip=1, limit=1)
    assert [u.username for u in everyone] == ["s01"]


async def test_find_count_and_get_all_take_query_values(world: World) -> None:
    for name in ("amy", "ben", "cat"):
        await world.user(name, role=UserRole.TEACHER if name == "ben" else UserRole.STUDENT)
    teachers = await world.core.users.find(world.scope, Query.where(role="teacher"))
    assert [u.username for u in teachers] == ["ben"]
    assert await world.core.users.count(world.scope, Query.where(role=UserRole.STUDENT)) == 2
    page = await world.core.users.get_all(world.scope, skip=0, limit=2)
    assert len(page) == 2 and page.next_cursor is not None
    with pytest.raises(ValidationError):
        await world.core.users.find(world.scope, Query.where(password="x"))


async def test_update_changes_listed_fields_and_bumps_version(world: World) -> None:
    alice = await world.core.users.get(world.scope, (await world.user("alice")).user.id)
    admin = (await world.user("boss", role=UserRole.ADMIN)).user
    world.clock.advance(minutes=5)
    actor = Scope(world.org.id, admin.id)
    updated = await world.core.users.update(
        actor, alice.id, {"full_name": "Alice A.", "role": "teacher", "email": "NEW@example.org"}
    )
    assert updated.full_name == "Alice A."
    assert updated.role is UserRole.TEACHER
    assert updated.email == "new@example.org"
    assert updated.version == alice.version + 1
    assert updated.updated_at == world.clock.now() and updated.updated_by == admin.id
    again = await world.core.users.get(world.scope, alice.id)
    assert again.email == "new@example.org"


async def test_update_with_bad_values_changes_nothing(world: World) -> None:
    alice = (await world.user("alice")).user
    before = world.state()
    for changes in (
        {"email": "nope"},
        {"full_name": "ok", "status": "napping"},
        {"hashed_password": "x"},
        {"organization_id": uuid7()},
        {"version": 99},
    ):
        with pytest.raises(ValidationError):
            await world.core.users.update(world.scope, alice.id, changes)
    assert world.state() == before


async def test_update_to_a_taken_email_is_already_exists(world: World) -> None:
    await world.user("alice")
    bob = (await world.user("bob")).user
    with pytest.raises(AlreadyExists):
        await world.core.users.update(world.scope, bob.id, {"email": "alice@example.org"})
    assert (await world.core.users.get(world.scope, bob.id)).email == "bob@example.org"


async def test_update_with_a_stale_expected_version_is_a_conflict(world: World) -> None:
    alice = (await world.user("alice")).user
    current = (await world.core.users.get(world.scope, alice.id)).version
    await world.core.users.update(
        world.scope, alice.id, {"full_name": "One"}, expected_version=current
    )
    with pytest.raises(ConcurrencyConflict):
        await world.core.users.update(
            world.scope, alice.id, {"full_name": "Two"}, expected_version=current
        )
    assert (await world.core.users.get(world.scope, alice.id)).full_name == "One"


async def test_update_profile_changes_profile_fields_only(world: World) -> None:
    alice = (await world.user("alice")).user
    profile = await world.core.users.update_profile(
        world.scope, alice.id, {"bio": "Hi", "skills": ["a", "b"], "locale": "pt-BR"}
    )
    assert (profile.bio, profile.skills, profile.locale) == ("Hi", ("a", "b"), "pt-BR")
    with pytest.raises(ValidationError):
        await world.core.users.update_profile(world.scope, alice.id, {"email": "x@example.org"})
    with pytest.raises(NotFound):
        await world.core.users.update_profile(world.scope, uuid7(), {"bio": "x"})


async def test_soft_delete_hides_user_records_who_and_frees_email(world: World) -> None:
    admin = (await world.user("admin", role=UserRole.ADMIN)).user
    alice = (await world.user("alice")).user
    await world.core.auth.authenticate(world.scope, "alice", "correct horse battery")
    actor = Scope(world.org.id, admin.id)
    assert await world.core.users.delete(actor, alice.id)
    assert not await world.core.users.delete(actor, alice.id)
    with pytest.raises(NotFound):
        await world.core.users.get(world.scope, alice.id)
    deleted = await world.core.users.find(
        world.scope, Query.where(username="alice"), include_deleted=True
    )
    assert deleted[0].deleted_by == admin.id and deleted[0].deleted_at == world.clock.now()
    assert await world.core.auth.get_active_sessions(world.scope, admin.id) == []
    replacement = await world.user("alice")
    assert replacement.user.id != alice.id


async def test_restore_brings_back_a_soft_deleted_user(world: World) -> None:
    alice = (await world.user("alice")).user
    await world.core.users.delete(world.scope, alice.id)
    restored = await world.core.users.restore(world.scope, alice.id)
    assert restored.deleted_at is None and restored.deleted_by is None
    assert (await world.core.users.get(world.scope, alice.id)).id == alice.id
    assert (await world.core.users.restore(world.scope, alice.id)).id == alice.id


async def test_restore_fails_when_the_email_was_reused(world: World) -> None:
    alice = (await world.user("alice")).user
    await world.core.users.delete(world.scope, alice.id)
    await world.user("alice")
    with pytest.raises(AlreadyExists):
        await world.core.users.restore(world.scope, alice.id)


async def test_hard_delete_removes_user_profile_and_sessions(world: World) -> None:
    alice = (await world.user("alice")).user
    await world.core.auth.authenticate(world.scope, "alice", "correct horse battery")
    assert await world.core.users.delete(world.scope, alice.id, hard=True)
    assert {cls.__name__ for cls, _ in world.state()} == {"Organization"}
    assert all(
        row.get("user_id") != alice.id and row.get("id") != alice.id
        for row in world.state().values()
    )


async def test_hard_delete_of_an_author_is_refused(world: World) -> None:
    from edu_domain.services import NewContent

    teacher = (await world.user("teacher", role=UserRole.TEACHER)).user
    await world.core.content.create_draft(
        Scope(world.org.id, teacher.id), NewContent(title="Fractions", body="...")
    )
    with pytest.raises(ValidationError) as error:
        await world.core.users.delete(world.scope, teacher.id, hard=True)
    assert error.value.field == "author_id"
    assert (await world.core.users.get(world.scope, teacher.id)).status is UserStatus.ACTIVE


async def test_a_new_email_must_be_verified_again(world: World) -> None:
    alice = (await world.user("alice")).user
    updated = await world.core.users.update(world.scope, alice.id, {"email": "Alice2@Example.org"})
    assert updated.email == "alice2@example.org"
    assert not updated.email_verified
    assert updated.email_verified_at is None
    mail = world.notifier.last("verify", "alice2@example.org")
    same = await world.core.users.update(world.scope, alice.id, {"email": "ALICE2@example.org"})
    assert world.notifier.last("verify", "alice2@example.org") is mail
    assert not same.email_verified
    verified = await world.core.verification.verify_email(world.scope, mail.token)
    assert verified.email_verified
