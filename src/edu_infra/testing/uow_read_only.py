"""Contract: read-only units of work (`read_only=True`) read as any other and write nothing.

Data is written through ordinary units of work and read through `Harness.reader`, so on an
adapter with read replicas these reads run on a replica (edu-core runs this class on its
own primary + hot standby, `tests/replica`). A write of any kind is a `ReadOnlyError`
before anything reaches the database; the unit of work then rolls back (as after any failed
write) and stays usable.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from uuid import uuid4

import pytest

from edu_domain.errors import ReadOnlyError, ValidationError
from edu_domain.model import EducationalContent, LoginSession, Organization, User, UserRole
from edu_domain.ports import UnitOfWork
from edu_domain.query import F, Query
from edu_infra.testing.harness import Harness, new_org, new_user


async def _school(harness: Harness) -> tuple[Organization, list[User], User]:
    """An organization with three live users (one verified teacher) and a soft-deleted one,
    plus a user of another organization (returned last)."""
    org, other = await harness.make_org(), await harness.make_org()
    users = [
        await harness.make_user(org, username="ann", role=UserRole.TEACHER, email_verified=True),
        await harness.make_user(org, username="bob"),
        await harness.make_user(org, username="cid"),
    ]
    gone = await harness.make_user(org, username="dan")
    async with harness.uow(org) as uow:
        await uow.delete(await uow.require(User, gone.id))
        await uow.commit()
    stranger = await harness.make_user(other)
    harness.reset_recorders()
    return org, users, stranger


class ReadOnlyContract:
    """The `UnitOfWork` contract: read-only units of work. Needs a `harness` fixture."""

    async def test_every_read_verb_answers_as_committed(self, harness: Harness) -> None:
        org, (ann, bob, cid), stranger = await _school(harness)
        author = await harness.make_content(org, ann, slug="algebra", tags=("math",))
        async with harness.reader(org) as uow:
            assert uow.read_only
            got = await uow.require(User, ann.id)
            assert (got.username, got.role, got.version) == ("ann", UserRole.TEACHER, ann.version)
            assert await uow.get(User, stranger.id) is None
            first = await uow.find(User, Query().order_by("username").page(0, 2))
            assert [u.username for u in first.items] == ["ann", "bob"]
            assert first.next_cursor is not None
            rest = await uow.find(User, Query().order_by("username").after(first.next_cursor, 2))
            assert [u.username for u in rest.items] == ["cid"]
            assert await uow.count(User) == 3
            assert await uow.count(User, Query.where(F("username").startswith("b"))) == 1
            groups = await uow.count_by(
                User, ["role"], measures={"v": F("email_verified").eq(True)}
            )
            assert {(g.key, g.count, g.measures["v"]) for g in groups} == {
                ((UserRole.TEACHER,), 1, 1),
                ((UserRole.STUDENT,), 2, 0),
            }
            tally = await uow.tally(User, ["role"], totals={"lessons": (EducationalContent, None)})
            assert dict(tally.totals) == {"lessons": 1}
            assert [u.username async for u in uow.stream(User, Query().order_by("username"))] == [
                "ann",
                "bob",
                "cid",
            ]
            lesson = await uow.first(EducationalContent, Query.where(slug="algebra"))
            assert lesson is not None
            assert (lesson.id, lesson.tags) == (author.id, ("math",))
            assert {bob.id, cid.id} <= {u.id for u in (await uow.find(User)).items}

    async def test_soft_deleted_rows_are_skipped_unless_asked(self, harness: Harness) -> None:
        org, _, _ = await _school(harness)
        async with harness.reader(org) as uow:
            assert await uow.count(User) == 3
            assert await uow.count(User, include_deleted=True) == 4
            deleted = await uow.find(User, Query.where(username="dan"), include_deleted=True)
            assert [u.username for u in deleted.items] == ["dan"]
            assert await uow.first(User, Query.where(username="dan")) is None

    async def test_a_read_only_unit_of_work_sees_only_its_tenant(self, harness: Harness) -> None:
        org, _, stranger = await _school(harness)
        async with harness.reader(stranger.organization_id) as uow:
            assert [u.id for u in (await uow.find(User)).items] == [stranger.id]
            assert await uow.get(Organization, org.id) is None
            assert await uow.count(User, include_deleted=True) == 1
        async with harness.reader(None) as uow:
            assert await uow.count(User) == 4
            assert await uow.count(Organization) == 2

    async def test_reads_return_one_object_per_row(self, harness: Harness) -> None:
        org, (ann, _, _), _ = await _school(harness)
        async with harness.reader(org) as uow:
            got = await uow.get(User, ann.id)
            again = await uow.first(User, Query.where(username="ann"))
            assert got is not None
            assert again is got

    async def test_every_write_verb_is_a_read_only_error(self, harness: Harness) -> None:
        org, (ann, bob, _), _ = await _school(harness)
        writes: dict[str, Callable[[UnitOfWork, User], Awaitable[None]]] = {
            "add": lambda uow, user: uow.add(new_user(org)),
            "add_all": lambda uow, user: uow.add_all([new_user(org), new_user(org)]),
            "delete": lambda uow, user: uow.delete(user),
            "hard delete": lambda uow, user: uow.delete(user, hard=True),
            "restore": lambda uow, user: uow.restore(user),
            "add an organization": lambda uow, user: uow.add(new_org()),
        }
        for name, write in writes.items():
            async with harness.reader(org, ann) as uow:
                user = await uow.require(User, bob.id)
                with pytest.raises(ReadOnlyError):
                    await write(uow, user)
                assert await uow.count(User) == 3, name  # usable after the refusal
        async with harness.uow(org) as uow:
            assert await uow.count(User, include_deleted=True) == 4
            assert (await uow.require(User, bob.id)).version == bob.version
        async with harness.reader(None) as uow:
            assert await uow.count(Organization) == 2
        assert harness.listener.changes == []
        assert harness.publisher.events == []

    async def test_a_changed_entity_is_refused_at_flush_commit_and_the_next_read(
        self, harness: Harness
    ) -> None:
        org, (ann, _, _), _ = await _school(harness)
        finishes: dict[str, Callable[[UnitOfWork], Awaitable[object]]] = {
            "flush": lambda uow: uow.flush(),
            "commit": lambda uow: uow.commit(),
            "read": lambda uow: uow.count(LoginSession),
        }
        for finish in finishes.values():
            async with harness.reader(org) as uow:
                user = await uow.require(User, ann.id)
                user.full_name = "Changed"
                with pytest.raises(ReadOnlyError):
                    await finish(uow)
                assert await uow.count(User) == 3  # rolled back, and usable
                assert user.full_name == "Changed"  # the caller's object keeps its values
        async with harness.uow(org) as uow:
            stored = await uow.require(User, ann.id)
        assert (stored.full_name, stored.version) == (ann.full_name, ann.version)
        assert harness.listener.changes == []

    async def test_a_commit_without_changes_succeeds_and_reports_nothing(
        self, harness: Harness
    ) -> None:
        org, (ann, _, _), _ = await _school(harness)
        async with harness.reader(org) as uow:
            await uow.require(User, ann.id)
            await uow.commit()
            await uow.rollback()
            assert await uow.get(User, ann.id) is not None
        assert harness.listener.changes == []

    async def test_read_only_must_be_a_bool(self, harness: Harness) -> None:
        with pytest.raises(ValidationError, match="read_only"):
            harness.factory(tenant=uuid4(), read_only="yes")  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="read_only"):
            harness.factory.unscoped(read_only=1)  # type: ignore[arg-type]
