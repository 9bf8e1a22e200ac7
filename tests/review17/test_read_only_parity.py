"""Review 17: a read-only unit of work refuses every write the same way on every adapter.

The memory fakes and SQLite must behave exactly like PostgreSQL (users test their code
against the fakes), and every factory a host may hold must take a consistency token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text

from edu_domain.errors import ReadOnlyError
from edu_domain.model import User
from edu_domain.model.events import EmailVerified
from edu_infra.telemetry import Telemetry, TracedUnitOfWorkFactory
from edu_infra.testing import Harness
from tests.contract.conftest import _open


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
async def sql_harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    async with _open(request.param, request) as opened:
        yield opened


async def test_an_event_recorded_in_a_read_only_unit_of_work_is_refused_at_commit(
    harness: Harness,
) -> None:
    org = await harness.make_org()
    ann = await harness.make_user(org, username="ann")
    async with harness.reader(org) as uow:
        user = await uow.require(User, ann.id)
        user.record(EmailVerified(organization_id=org.id, user_id=ann.id))
        with pytest.raises(ReadOnlyError):
            await uow.commit()
    assert harness.publisher.events == []
    assert harness.publisher.envelopes == []


async def test_a_locking_read_in_a_read_only_unit_of_work_is_refused_on_every_adapter(
    harness: Harness,
) -> None:
    org = await harness.make_org()
    ann = await harness.make_user(org, username="ann")
    async with harness.reader(org) as uow:
        with pytest.raises(ReadOnlyError):
            await uow.get(User, ann.id, lock=True)
        assert await uow.count(User) == 1  # usable after the refusal


async def test_raw_sql_through_the_session_of_a_read_only_unit_of_work_writes_nothing(
    sql_harness: Harness,
) -> None:
    harness = sql_harness
    org = await harness.make_org()
    ann = await harness.make_user(org, username="ann", full_name="Ann")
    async with harness.reader(org) as uow:
        assert await uow.get(User, ann.id) is not None
        session: Any = uow.session  # type: ignore[attr-defined]
        try:
            await session.execute(text("UPDATE users SET full_name = 'Hacked'"))
            await uow.commit()
        except Exception:  # refused: PostgreSQL's BEGIN READ ONLY
            pass
    async with harness.uow(org) as uow:
        assert (await uow.require(User, ann.id)).full_name == "Ann"


async def test_every_factory_takes_a_consistency_token(
    harness: Harness,
) -> None:
    org = await harness.make_org()
    factory: Any = harness.factory
    async with factory(tenant=org.id, read_only=True, after="0/1") as uow:
        assert await uow.count(User) == 0
    async with factory.unscoped(read_only=True, after="0/1") as uow:
        assert await uow.get(User, org.id) is None


async def test_the_traced_factory_takes_a_consistency_token(sql_harness: Harness) -> None:
    org = await sql_harness.make_org()
    traced: Any = TracedUnitOfWorkFactory(sql_harness.factory, Telemetry())
    async with traced(tenant=org.id, read_only=True, after="0/1") as uow:
        assert await uow.count(User) == 0
