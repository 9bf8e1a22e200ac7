"""A closed PostgreSQL unit of work is freed by reference counting, not by the cyclic GC.

Cyclic garbage survives to the older generations, whose full collections stop the event
loop for every request in flight (bench/README.md, *Where the time goes*).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from edu_domain.errors import InvalidState
from edu_domain.model import User
from edu_infra.sqlalchemy.uow import SqlUnitOfWork
from edu_infra.testing.harness import Harness, new_user


@pytest.fixture
def no_gc() -> Iterator[list[object]]:
    """The cyclic garbage made inside the test (collected with the collector saving it)."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    found: list[object] = []
    try:
        yield found
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def cyclic_garbage(found: list[object]) -> list[str]:
    gc.collect()
    found.extend(gc.garbage)
    gc.garbage.clear()
    return sorted({type(o).__name__ for o in found})


async def test_reads_and_writes_leave_no_cyclic_garbage(
    pg_harness: Harness, no_gc: list[object]
) -> None:
    org = await pg_harness.make_org()
    user = await pg_harness.make_user(org)
    cyclic_garbage(no_gc)  # the setup's own garbage is not the subject
    no_gc.clear()
    for _ in range(3):
        async with pg_harness.uow(org) as uow:
            found = await uow.get(User, user.id)
            assert found is not None
        async with pg_harness.uow(org) as uow:
            loaded = await uow.require(User, user.id)
            loaded.rename("Renamed")
            await uow.add(new_user(org))
            await uow.commit()
    assert cyclic_garbage(no_gc) == []


async def test_a_session_needed_after_the_unit_of_work_is_gone_is_refused(
    pg_harness: Harness,
) -> None:
    org = await pg_harness.make_org()
    async with pg_harness.uow(org) as uow:
        assert isinstance(uow, SqlUnitOfWork)
        make_session = uow._held._make_session  # type: ignore[attr-defined]
        assert uow.session is not None  # made through the weak reference while alive
    del uow
    gc.collect()
    with pytest.raises(InvalidState):
        make_session()
