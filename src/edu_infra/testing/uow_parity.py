"""Contract: behaviours where adapters once differed (found by the differential machine and a
test audit), each now one rule on every adapter."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from edu_domain.errors import ConcurrencyConflict, ValidationError
from edu_domain.model import EducationalContent, User, UserDeleted
from edu_domain.query import F, Query
from edu_infra.outbox import OutboxState
from edu_infra.testing.harness import Harness

#: Aware datetimes with no UTC form inside datetime's range.
OUT_OF_RANGE = [
    datetime(9999, 12, 31, 22, 0, tzinfo=timezone(timedelta(hours=-5))),
    datetime(1, 1, 1, 1, tzinfo=timezone(timedelta(hours=5))),
]


class ParityContract:
    """The `UnitOfWork` contract: one rule where adapters drifted. Needs a `harness` fixture."""

    @pytest.mark.parametrize("when", OUT_OF_RANGE, ids=["year-9999-minus-5h", "year-1-plus-5h"])
    @pytest.mark.parametrize("read", ["find", "count", "cursor"])
    async def test_a_datetime_without_a_utc_form_is_a_validation_error_naming_the_query(
        self, harness: Harness, when: datetime, read: str
    ) -> None:
        org = await harness.make_org()
        for _ in range(3):
            await harness.make_user(org)
        query = Query.where(F("created_at").ne(when))
        async with harness.uow(org) as uow:
            if read == "cursor":
                first = await uow.find(User, Query().order_by("username").page(0, 1))
                assert first.next_cursor is not None
                query = query.order_by("username").after(first.next_cursor, 1)
            with pytest.raises(ValidationError) as raised:
                await (uow.count(User, query) if read == "count" else uow.find(User, query))
            assert raised.value.field == "query"
            assert "SELECT" not in str(raised.value).upper()
            assert await uow.count(User) == 3  # the unit of work is still usable

    async def test_negative_zero_in_metadata_reads_back_as_zero(self, harness: Harness) -> None:
        org = await harness.make_org()
        author = await harness.make_user(org)
        content = await harness.make_content(org, author, metadata={"z": -0.0, "l": [-0.0, 1.5]})
        assert str(content.metadata["z"]) == "0.0"  # normalised by the domain, on every adapter
        async with harness.uow(org) as uow:
            again = await uow.require(EducationalContent, content.id)
            assert [str(again.metadata["z"]), *map(str, again.metadata["l"])] == [
                "0.0",
                "0.0",
                "1.5",
            ]

    @pytest.mark.parametrize(
        ("stored", "needle", "found"),
        [
            # every capital sigma lowers to a plain sigma, at a word's end too
            (
                "\u039f\u0394\u03a5\u03a3\u03a3\u0395\u0391\u03a3",
                "\u03bf\u03b4\u03c5\u03c3\u03c3\u03b5\u03b1\u03c3",
                True,
            ),
            ("\u03a3\u0391\u03a3", "\u03c3\u03b1\u03c2", False),  # no final-sigma rule
            ("\u03a3\u0391\u03a3", "\u03c3\u03b1\u03c3", True),
            ("\u0130STANBUL", "istanbul", True),  # dotted capital I folds to one character, i
            ("Stra\u00dfe", "STRASSE", False),  # no one-to-many folding
            ("Stra\u00dfe", "STRA\u00dfE", True),
        ],
    )
    async def test_icontains_folds_each_character_alone_on_every_adapter(
        self, harness: Harness, stored: str, needle: str, found: bool
    ) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org, full_name=stored)
        query = Query.where(F("full_name").icontains(needle))
        async with harness.uow(org) as uow:
            hits = [u.id for u in (await uow.find(User, query)).items]
            assert hits == ([user.id] if found else [])
            assert await uow.count(User, query) == int(found)

    @pytest.mark.parametrize("new", [True, 1.0, "1"], ids=["true", "one-point-zero", "text"])
    async def test_a_change_from_1_to_a_value_equal_in_python_writes_a_new_version(
        self, harness: Harness, new: Any
    ) -> None:
        org = await harness.make_org()
        author = await harness.make_user(org)
        content = await harness.make_content(org, author, metadata={"c": 1})
        async with harness.uow(org) as uow:
            loaded = await uow.require(EducationalContent, content.id)
            loaded.metadata = {"c": new}
            await uow.commit()
        async with harness.uow(org) as uow:
            again = await uow.require(EducationalContent, content.id)
            assert type(again.metadata["c"]) is type(new)
            assert again.metadata["c"] == new
            assert again.version == content.version + 1

    async def test_an_unchanged_assignment_writes_nothing(self, harness: Harness) -> None:
        org = await harness.make_org()
        author = await harness.make_user(org)
        content = await harness.make_content(org, author, metadata={"c": 1, "d": [True]})
        async with harness.uow(org) as uow:
            loaded = await uow.require(EducationalContent, content.id)
            loaded.metadata = {"c": 1, "d": [True]}
            await uow.commit()
        async with harness.uow(org) as uow:
            assert (await uow.require(EducationalContent, content.id)).version == content.version

    async def test_a_detached_object_can_be_deleted_by_another_unit_of_work(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        async with harness.uow(org) as uow:
            await uow.delete(user)
            await uow.commit()
        assert user.is_deleted
        async with harness.uow(org) as uow:
            assert await uow.get(User, user.id) is None
            assert (await uow.require(User, user.id, include_deleted=True)).is_deleted

    @pytest.mark.parametrize("hard", [False, True], ids=["soft", "hard"])
    async def test_deleting_a_stale_detached_object_is_a_conflict(
        self, harness: Harness, hard: bool
    ) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        async with harness.uow(org) as uow:
            (await uow.require(User, user.id)).rename("Newer")
            await uow.commit()
        async with harness.uow(org) as uow:
            with pytest.raises(ConcurrencyConflict):
                await uow.delete(user, hard=hard)
        async with harness.uow(org) as uow:
            again = await uow.require(User, user.id)
            assert again.full_name == "Newer"

    async def test_restoring_a_stale_detached_object_is_a_conflict(self, harness: Harness) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        async with harness.uow(org) as uow:
            await uow.delete(await uow.require(User, user.id))
            await uow.commit()
        async with harness.uow(org) as uow:
            with pytest.raises(ConcurrencyConflict):
                await uow.restore(user)  # the caller's copy predates the delete

    async def test_failing_callbacks_publishers_and_listeners_are_logged_not_raised(
        self, harness: Harness, caplog: pytest.LogCaptureFixture
    ) -> None:
        org = await harness.make_org()
        harness.publisher.failure = RuntimeError("publisher down")
        harness.listener.failure = RuntimeError("listener down")
        ran: list[str] = []

        async def broken() -> None:
            raise RuntimeError("callback down")

        async def later() -> None:
            ran.append("later")

        user = None
        try:
            with caplog.at_level(logging.ERROR, logger="edu_infra"):
                async with harness.uow(org) as uow:
                    user = await harness_user(harness, uow, org.id)
                    uow.after_commit(broken)
                    uow.after_commit(later)
                    await uow.commit()
        finally:
            harness.publisher.failure = harness.listener.failure = None
        assert ran == ["later"]
        assert [type(e) for e in harness.publisher.events] == [UserDeleted]  # tried once
        assert len(harness.listener.commits) == 1
        failed = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert all(r.exc_info is not None for r in failed)
        if harness.relay is None:
            assert len(failed) == 3
        else:  # the event waits in the outbox for the relay's retry
            assert len(failed) == 2
            counts = await harness.relay.store.counts()
            assert counts[OutboxState.PENDING] == 1
        assert user is not None
        async with harness.uow(org) as uow:
            assert await uow.get(User, user.id) is not None


async def harness_user(harness: Harness, uow: Any, org_id: Any) -> User:
    """A new user carrying one pending event (so the publisher is called)."""
    from edu_infra.testing.harness import new_user

    user = new_user(org_id)
    user.record(UserDeleted(organization_id=org_id, user_id=user.id, hard=False))
    await uow.add(user)
    return user
