"""Review 13: what `add_all` wrote and the caller let go of (held weakly on PostgreSQL's COPY
path) against the strongly held memory and SQLite adapters; `users.import_users` in a shared
transaction and by non-administrators; `edu_analyze` called by the application role."""

from __future__ import annotations

import gc
import weakref
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from edu_domain import PermissionDenied
from edu_domain.errors import AlreadyExists
from edu_domain.model import EducationalContent, User, UserProfile, UserRole, UserStatus
from edu_domain.model.events import ContentArchived
from edu_domain.services import Deps, EduCore, NewUser, Scope
from edu_infra.memory.fakes import FastHasher, SequentialTokens
from edu_infra.system import Uuid7Generator
from edu_infra.testing.harness import Harness, new_content, new_user
from edu_infra.testing.uow_imports import user_row

# ------------------------------------------------------------ bulk-added entities, dropped


async def test_an_event_recorded_on_a_dropped_bulk_added_entity_is_published(
    harness: Harness,
) -> None:
    org = await harness.make_org()
    author = await harness.make_user(org)
    async with harness.uow(org) as uow:
        content = new_content(org, author)
        await uow.add_all([content])
        content.record(ContentArchived(organization_id=org.id, content_id=content.id))
        gone = weakref.ref(content)
        del content
        gc.collect()
        await uow.commit()
    assert [type(e) for e in harness.publisher.events] == [ContentArchived]
    gc.collect()
    assert gone() is None  # and not kept after the commit


async def test_an_in_place_json_change_of_a_dropped_bulk_added_entity_is_written(
    harness: Harness,
) -> None:
    org = await harness.make_org()
    author = await harness.make_user(org)
    async with harness.uow(org) as uow:
        content = new_content(org, author, metadata={"a": 1})
        content_id = content.id
        await uow.add_all([content])
        content.metadata["b"] = 2
        del content
        gc.collect()
        await uow.commit()
    async with harness.uow(org) as uow:
        stored = await uow.require(EducationalContent, content_id)
    assert (stored.metadata, stored.version) == ({"a": 1, "b": 2}, 2)


async def test_changes_of_dropped_bulk_added_entities_survive_reads_and_earlier_commits(
    harness: Harness,
) -> None:
    org = await harness.make_org()
    async with harness.uow(org) as uow:
        batch = [new_user(org) for _ in range(3)]
        ids = [u.id for u in batch]
        await uow.add_all(batch)
        batch[0].rename("Before a read")
        await uow.find(User)  # the read flushes (and may hand entities to the session)
        batch[1].rename("After a read")
        await uow.commit()
        batch[2].rename("After a commit")
        del batch
        gc.collect()
        await uow.commit()
    async with harness.uow(org) as uow:
        stored = [await uow.require(User, i) for i in ids]
    assert [(u.full_name, u.version) for u in stored] == [
        ("Before a read", 2),
        ("After a read", 2),
        ("After a commit", 2),
    ]


# ------------------------------------------------------------ import_users


def _core(harness: Harness) -> EduCore:
    return EduCore(
        Deps(
            uow=harness.factory,
            clock=harness.clock,
            ids=Uuid7Generator(),
            tokens=SequentialTokens(),
            hasher=FastHasher(),
        )
    )


async def _member(core: EduCore, org_id: UUID, name: str, role: UserRole) -> Scope:
    account = await core.users.register(
        Scope.system(org_id),
        NewUser(
            email=f"{name}@example.org",
            username=name,
            password="correct horse battery",
            role=role,
            status=UserStatus.ACTIVE,
            email_verified=True,
        ),
        send_verification=False,
    )
    return Scope(org_id, account.user.id)


async def _state(harness: Harness, org_id: UUID) -> tuple[int, int]:
    async with harness.uow(org_id) as uow:
        return await uow.count(User, include_deleted=True), await uow.count(UserProfile)


async def test_import_users_in_a_transaction_that_fails_later_commits_nothing(
    harness: Harness,
) -> None:
    core = _core(harness)
    org = await harness.make_org()
    admin = await _member(core, org.id, "root", UserRole.ADMIN)
    before = await _state(harness, org.id)
    rows: list[dict[str, Any]] = [user_row(), user_row()]
    clash = NewUser(email=rows[0]["email"], username="late", password="correct horse battery")
    imported: list[int] = []

    async def both() -> None:
        async with core.transaction(admin) as tx:
            imported.append(await tx.users.import_users(admin, rows))
            await tx.users.register(admin, clash, send_verification=False)

    with pytest.raises(AlreadyExists):
        await both()
    assert imported == [2]
    assert await _state(harness, org.id) == before


@pytest.mark.parametrize("role", [UserRole.STAFF, UserRole.TEACHER, UserRole.STUDENT])
async def test_only_administrators_import_users_on_every_adapter(
    harness: Harness, role: UserRole
) -> None:
    core = _core(harness)
    org = await harness.make_org()
    member = await _member(core, org.id, "member", role)
    before = await _state(harness, org.id)
    for row in (user_row(), user_row(role="admin", status="active", email_verified=True)):
        with pytest.raises(PermissionDenied):
            await core.users.import_users(member, [row])
    assert await _state(harness, org.id) == before


# ------------------------------------------------------------ edu_analyze, by the attacker


@pytest.mark.postgres
@pytest.mark.parametrize("target", [None, "pg_catalog.pg_stats", "pg_catalog.pg_authid"])
async def test_edu_analyze_refuses_null_views_and_catalogs(
    pg_harness: Harness, target: str | None
) -> None:
    org = await pg_harness.make_org()
    async with pg_harness.uow(org) as uow:
        driver = await uow.rows.driver()  # type: ignore[attr-defined]
        with pytest.raises(asyncpg.PostgresError) as refused:
            await driver.execute("SELECT edu_analyze($1::regclass)", target)
    assert refused.value.sqlstate == "22023"


@pytest.mark.postgres
async def test_edu_analyze_cannot_be_redirected_by_the_search_path(pg_harness: Harness) -> None:
    """The app role may set its search_path; `edu_analyze` still names only our tables and
    runs with its own fixed path (a `users` elsewhere cannot be created: no CREATE)."""
    org = await pg_harness.make_org()
    async with pg_harness.uow(org) as uow:
        driver = await uow.rows.driver()  # type: ignore[attr-defined]
        schema = await driver.fetchval("SELECT current_schema()")
        await driver.execute("SELECT set_config('search_path', 'pg_catalog', true)")
        with pytest.raises(asyncpg.PostgresError):  # `users` is not found on that path
            await driver.execute(f'SELECT "{schema}".edu_analyze($1::regclass)', "users")
    async with pg_harness.uow(org) as uow:
        driver = await uow.rows.driver()  # type: ignore[attr-defined]
        with pytest.raises(asyncpg.PostgresError) as refused:
            await driver.execute("CREATE TABLE pg_temp.users (id int)")
    assert refused.value.sqlstate == "42501"
