"""Edges of streams and of entities the caller stops referencing: writes during and after a
stream, a stream's arguments and lifecycle, and changes and events that must survive the
caller's last reference (an adapter may hold entities weakly, never lose their work).

From a review of the SQL adapter redesign (issue 12); every adapter shares these.
"""

from __future__ import annotations

import gc
from typing import Any

import pytest

from edu_domain.errors import InvalidState, ValidationError
from edu_domain.model import ContentPublished, EducationalContent, EmailVerified, Organization, User
from edu_domain.query import Query
from edu_infra.testing.harness import Harness, new_content, new_user


async def _import_and_publish(
    harness: Harness, uow: Any, org: Organization, author: User
) -> list[Any]:
    """A helper that adds a batch, changes it and returns only the ids (the batch's last
    reference goes with it; the caller commits)."""
    batch = [new_content(org, author) for _ in range(3)]
    await uow.add_all(batch)
    for item in batch:
        item.publish(harness.clock.now())
    return [item.id for item in batch]


class StreamEdgesContract:
    # ------------------------------------------------------------ streams and writes

    async def test_a_change_made_while_streaming_is_written(self, harness: Harness) -> None:
        org = await harness.make_org()
        users = [await harness.make_user(org) for _ in range(4)]
        async with harness.uow(org) as uow:
            async for user in uow.stream(User, Query().order_by("id"), batch_size=2):
                user.rename("Streamed")
                assert await uow.get(User, user.id) is user  # flushes mid-stream
            await uow.commit()
        async with harness.uow(org) as uow:
            assert await uow.count(User, Query.where(full_name="Streamed")) == len(users)

    @pytest.mark.parametrize("hard", [False, True], ids=["soft", "hard"])
    async def test_a_row_deleted_during_a_stream_is_not_streamed_afterwards(
        self, harness: Harness, hard: bool
    ) -> None:
        org = await harness.make_org()
        users = sorted([await harness.make_user(org) for _ in range(4)], key=lambda u: u.id)
        async with harness.uow(org) as uow:
            seen: list[Any] = []
            async for user in uow.stream(User, Query().order_by("id"), batch_size=1):
                if not seen:
                    await uow.delete(await uow.require(User, users[-1].id), hard=hard)
                seen.append(user.id)
            assert seen == [u.id for u in users[:-1]]

    async def test_leaving_a_stream_early_then_writing_works(self, harness: Harness) -> None:
        org = await harness.make_org()
        for _ in range(5):
            await harness.make_user(org)
        async with harness.uow(org) as uow:
            async for user in uow.stream(User, Query().order_by("id"), batch_size=2):
                user.rename("First")
                break
            await uow.add(new_user(org))
            await uow.add_all([new_user(org)])
            await uow.commit()
            assert await uow.count(User) == 7
            assert await uow.count(User, Query.where(full_name="First")) == 1

    # ------------------------------------------------------------ arguments and lifecycle

    async def test_stream_checks_its_arguments_when_called(self, harness: Harness) -> None:
        org = await harness.make_org()
        async with harness.uow(org) as uow:
            with pytest.raises(ValidationError):
                uow.stream(User, batch_size=0)
            with pytest.raises(ValidationError):
                uow.stream(object)  # type: ignore[type-var]

    async def test_a_stream_of_a_closed_unit_of_work_is_invalid_state(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()
        for _ in range(4):
            await harness.make_user(org)
        uow = harness.uow(org)
        await uow.begin()
        stream = uow.stream(User, batch_size=1)
        assert await anext(stream) is not None
        await uow.close()
        with pytest.raises(InvalidState):
            async for _ in stream:
                pass

    # ------------------------------------------------------------ what the unit of work keeps

    async def test_changes_to_bulk_added_entities_survive_the_callers_last_reference(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()
        author = await harness.make_user(org)
        async with harness.uow(org) as uow:
            ids = await _import_and_publish(harness, uow, org, author)
            gc.collect()
            await uow.commit()
        assert len(harness.publisher.of_type(ContentPublished)) == 3
        async with harness.uow(org) as uow:
            for id_ in ids:
                assert (await uow.require(EducationalContent, id_)).status.value == "published"

    async def test_events_of_streamed_entities_survive_the_callers_last_reference(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()
        for _ in range(3):
            await harness.make_user(org)
        async with harness.uow(org) as uow:
            async for user in uow.stream(User, batch_size=1):
                user.record(EmailVerified(organization_id=org.id, user_id=user.id))
            del user
            gc.collect()
            await uow.commit()
        assert len(harness.publisher.of_type(EmailVerified)) == 3

    async def test_events_of_bulk_added_entities_survive_the_callers_last_reference(
        self, harness: Harness
    ) -> None:
        """An event recorded after `add_all` on an entity no field of which changes, then the
        caller's last reference dropped: still published at commit (the PostgreSQL path holds
        bulk-added entities weakly until they change or record an event)."""
        org = await harness.make_org()
        async with harness.uow(org) as uow:
            users = [new_user(org) for _ in range(3)]
            await uow.add_all(users)
            for user in users:
                user.record(EmailVerified(organization_id=org.id, user_id=user.id))
            del users, user
            gc.collect()
            await uow.commit()
        assert len(harness.publisher.of_type(EmailVerified)) == 3
