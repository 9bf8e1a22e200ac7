"""Edges of writing: values no database takes, ids across organizations, unscoped flushes
over several organizations, JSON values on every write path, flush order, and batches that
list a row before the row it references.

From a review of the SQL adapter redesign (issue 12). Two tests are documented limits of
edu-core's SQL adapters (README, *Known limits*): strict xfails there, plain tests on
memory and on an adapter of your own.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from edu_domain.errors import ConcurrencyConflict, DomainError, ValidationError
from edu_domain.model import EducationalContent, Organization, User
from edu_domain.model.base import identical
from edu_domain.ports import ChangeKind
from edu_domain.query import Query
from edu_infra.testing.assertions import no_sql
from edu_infra.testing.harness import (
    Harness,
    new_content,
    new_org,
    new_profile,
    new_session,
    new_user,
)

#: aware datetimes whose UTC form is out of Python's range
OUT_OF_RANGE = [
    datetime(1, 1, 1, 1, tzinfo=timezone(timedelta(hours=5))),
    datetime(9999, 12, 31, 22, tzinfo=timezone(timedelta(hours=-5))),
]

TRICKY = {
    "floats": [1e16, 1e300, 5e-324, 0.1, 1.7976931348623157e308, -2.5e-10, 1.2345678901234568e17],
    "ints": [2**63 - 1, -(2**63), 0, 2**53 + 1],
    "mixed": [True, 1, 1.0, None, "1", {"k": [False, 0, 0.0]}],
    "text": 'quote " backslash \\ tab\t line\u2028 emoji \U0001f600',
}


def limit_on_sql(request: pytest.FixtureRequest, harness: Harness, reason: str) -> None:
    """A documented limit of edu-core's SQL adapters: a strict xfail there (it fails the run
    the day it starts passing). Memory, and an adapter of your own, are held to the port's
    behaviour (an adapter sharing the limit overrides the test)."""
    if type(harness.factory).__module__.startswith("edu_infra.sqlalchemy."):
        request.node.add_marker(pytest.mark.xfail(strict=True, reason=reason))


class WriteEdgesContract:
    # ------------------------------------------------------------ values the database refuses

    @pytest.mark.parametrize("when", OUT_OF_RANGE, ids=["year-0", "year-10000"])
    async def test_a_datetime_without_a_utc_form_is_refused_before_any_adapter_sees_it(
        self, harness: Harness, when: datetime
    ) -> None:
        """One rule for every adapter: the entity refuses it (built or assigned), so no driver
        error (with its SQL) can follow, and a change that was refused writes nothing."""
        org = await harness.make_org()
        with pytest.raises(ValidationError) as built:
            new_user(org, last_login_at=when)
        assert built.value.field == "last_login_at"
        user = await harness.make_user(org)
        async with harness.uow(org) as uow:
            got = await uow.require(User, user.id)
            with pytest.raises(ValidationError) as assigned:
                got.last_login_at = when
            no_sql(assigned.value)
            await uow.commit()
        async with harness.uow(org) as uow:
            assert (await uow.require(User, user.id)).version == user.version

    # ------------------------------------------------------------ ids across organizations

    async def test_an_id_taken_in_another_organization_cannot_be_added(
        self, harness: Harness
    ) -> None:
        """Identity is `id` alone (the identity map, unscoped `get`), so an id is one row."""
        victim_org, attacker_org = await harness.make_org(), await harness.make_org()
        victim = await harness.make_user(victim_org)
        forged = new_user(attacker_org, id=victim.id)
        async with harness.uow(attacker_org) as uow:
            try:
                await uow.add(forged)
                await uow.commit()
            except DomainError as error:
                no_sql(error)
        async with harness.factory.unscoped() as uow:
            page = await uow.find(User, Query.where(id=victim.id))
            assert [u.organization_id for u in page.items] == [victim_org.id]
            got = await uow.require(User, victim.id)
            assert got.organization_id == victim_org.id

    # ------------------------------------------------------------ the compiled versioned UPDATE

    async def test_an_unscoped_flush_writes_rows_of_several_organizations(
        self, harness: Harness
    ) -> None:
        first, second = await harness.make_org(), await harness.make_org()
        a, b = await harness.make_user(first), await harness.make_user(second)
        author = await harness.make_user(first)
        content = await harness.make_content(first, author, metadata={"n": 1})
        async with harness.factory.unscoped() as uow:
            got_a, got_b = await uow.require(User, a.id), await uow.require(User, b.id)
            got_org = await uow.require(Organization, second.id)
            got_content = await uow.require(EducationalContent, content.id)
            got_a.rename("A")
            got_b.rename("B")
            got_org.rename("Second")
            got_org.suspend()
            got_content.metadata["n"] = 2.5
            got_content.metadata["deep"] = {"list": [1, True, None, "x", -1.25]}
            got_content.publish(harness.clock.now())
            await uow.commit()
        assert {(c.entity, c.id, c.organization_id, c.kind) for c in harness.listener.changes} == {
            (User, a.id, first.id, ChangeKind.UPDATE),
            (User, b.id, second.id, ChangeKind.UPDATE),
            (Organization, second.id, second.id, ChangeKind.UPDATE),
            (EducationalContent, content.id, first.id, ChangeKind.UPDATE),
        }
        async with harness.factory.unscoped() as uow:
            assert (await uow.require(User, a.id)).full_name == "A"
            assert (await uow.require(User, b.id)).full_name == "B"
            org = await uow.require(Organization, second.id)
            assert (org.name, org.status.value, org.version) == ("Second", "suspended", 2)
            stored = await uow.require(EducationalContent, content.id)
            assert stored.metadata == {"n": 2.5, "deep": {"list": [1, True, None, "x", -1.25]}}
            assert type(stored.metadata["n"]) is float
            assert stored.status.value == "published"
            assert stored.version == 2

    async def test_metadata_changed_in_place_and_back_writes_nothing(
        self, harness: Harness, request: pytest.FixtureRequest
    ) -> None:
        limit_on_sql(
            request,
            harness,
            "LIMIT (README, Known limits): an in-place change of a JSON value and back is a"
            " write on SQL (SQLAlchemy's mutation tracking keeps no copy of the old value)",
        )
        org = await harness.make_org()
        author = await harness.make_user(org)
        content = await harness.make_content(org, author, metadata={"c": 1})
        async with harness.uow(org) as uow:
            got = await uow.require(EducationalContent, content.id)
            got.metadata["c"] = 2
            got.metadata["c"] = 1
            await uow.commit()
        assert harness.listener.changes == []
        async with harness.uow(org) as uow:
            assert (await uow.require(EducationalContent, content.id)).version == content.version

    async def test_two_users_may_swap_emails_in_one_commit(
        self, harness: Harness, request: pytest.FixtureRequest
    ) -> None:
        limit_on_sql(
            request,
            harness,
            "LIMIT (README, Known limits): partial unique indexes are checked per row, not"
            " deferred to commit: swapping two unique values takes a third value in between",
        )
        org = await harness.make_org()
        a = await harness.make_user(org, email="a@example.org")
        b = await harness.make_user(org, email="b@example.org")
        async with harness.uow(org) as uow:
            got_a, got_b = await uow.require(User, a.id), await uow.require(User, b.id)
            got_a.email, got_b.email = "b@example.org", "a@example.org"
            await uow.commit()
        async with harness.uow(org) as uow:
            assert (await uow.require(User, a.id)).email == "b@example.org"

    async def test_an_unscoped_flush_with_one_stale_row_names_it_and_writes_nothing(
        self, harness: Harness
    ) -> None:
        """Three rounds of four changed users of two organizations, one of them stale: the
        conflict names the stale one, not an arbitrary changed row of the table (right by
        chance 1 time in 4 per round), and nothing is written."""
        first, second = await harness.make_org(), await harness.make_org()
        for _ in range(3):
            users = [await harness.make_user(org) for org in (first, second, first, second)]
            stale = users[1]
            async with harness.factory.unscoped() as uow:
                got = [await uow.require(User, u.id) for u in users]
                async with harness.uow(second) as other:
                    (await other.require(User, stale.id)).rename("Other")
                    await other.commit()
                for item in got:
                    item.rename("Mine")
                with pytest.raises(ConcurrencyConflict) as caught:
                    await uow.commit()
            no_sql(caught.value)
            assert (caught.value.entity, caught.value.key) == ("User", stale.id)
            async with harness.factory.unscoped() as uow:
                names = [(await uow.require(User, u.id)).full_name for u in users]
            assert names == [None, "Other", None, None]

    # ------------------------------------------------------------ flush ordering

    async def test_a_pending_change_is_written_before_an_insert(self, harness: Harness) -> None:
        org = await harness.make_org()
        old = await harness.make_user(org, email="taken@example.org")
        async with harness.uow(org) as uow:
            (await uow.require(User, old.id)).email = "moved@example.org"
            await uow.add(new_user(org, email="taken@example.org"))
            await uow.add_all([new_user(org, email="moved2@example.org")])
            await uow.commit()
        async with harness.uow(org) as uow:
            assert await uow.count(User) == 3

    async def test_a_change_to_an_entity_kept_across_commits_is_written(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()
        bulk = [new_user(org) for _ in range(3)]
        single = new_user(org)
        async with harness.uow(org) as uow:
            await uow.add_all(bulk)
            await uow.add(single)
            await uow.commit()
            bulk[1].rename("Bulk")
            single.rename("Single")
            await uow.commit()
            bulk[1].rename("Bulk again")
            assert await uow.count(User, Query.where(full_name="Bulk again")) == 1
            await uow.commit()
        async with harness.uow(org) as uow:
            assert (await uow.require(User, bulk[1].id)).version == 3
            assert (await uow.require(User, single.id)).full_name == "Single"

    # ------------------------------------------------------------ JSON values on every write path

    @pytest.mark.parametrize("path", ["add", "add_all", "update"])
    async def test_metadata_values_read_back_identical_on_every_write_path(
        self, harness: Harness, path: str
    ) -> None:
        org = await harness.make_org()
        author = await harness.make_user(org)
        content = new_content(org, author, metadata=TRICKY if path != "update" else {})
        async with harness.uow(org) as uow:
            if path == "add_all":
                await uow.add_all([content])
            else:
                await uow.add(content)
            await uow.commit()
            if path == "update":
                content.metadata = TRICKY
                await uow.commit()
        async with harness.uow(org) as uow:
            stored = (await uow.require(EducationalContent, content.id)).metadata
        assert identical(stored, TRICKY), stored

    # ------------------------------------------------------------ batches that reference themselves

    async def test_a_batch_may_list_a_row_before_the_row_it_references(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()
        author = new_user(org)
        content = new_content(org, author)
        session = new_session(author, harness.clock)
        async with harness.uow(org) as uow:
            await uow.add_all([content, session, new_profile(author), author])
            await uow.commit()
        async with harness.uow(org) as uow:
            assert await uow.get(EducationalContent, content.id) is not None

    async def test_an_unscoped_batch_may_create_organizations_with_their_rows(
        self, harness: Harness
    ) -> None:
        first, second = new_org(), new_org()
        users = [new_user(first), new_user(second)]
        content = new_content(second, users[1])
        async with harness.factory.unscoped() as uow:
            await uow.add_all([content, *users, second, first])
            await uow.commit()
        kinds = {(c.entity, c.organization_id) for c in harness.listener.changes}
        assert (Organization, first.id) in kinds and (EducationalContent, second.id) in kinds
        async with harness.uow(second) as uow:
            assert await uow.count(User) == 1
            assert await uow.count(EducationalContent) == 1
