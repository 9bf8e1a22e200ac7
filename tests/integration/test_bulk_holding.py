"""P7: entities `add_all` wrote by COPY are held weakly on the PostgreSQL driver path (the
caller's references keep them), and strongly from their first change until commit, so a
change made after `add_all` is written even once the caller lets go (contract suite:
`test_changes_to_bulk_added_entities_survive_the_callers_last_reference`)."""

from __future__ import annotations

import gc
import weakref

import pytest

from edu_domain.model import User
from edu_infra.testing.harness import Harness, new_user

pytestmark = pytest.mark.postgres


async def test_bulk_added_entities_the_caller_drops_are_not_kept(pg_harness: Harness) -> None:
    org = await pg_harness.make_org()
    async with pg_harness.uow(org) as uow:
        batch = [new_user(org) for _ in range(50)]
        kept, changed = batch[0], batch[1]
        ids = [u.id for u in batch]
        await uow.add_all(batch)
        changed.rename("Changed after add_all")
        dropped = [weakref.ref(u) for u in batch[2:]]
        del batch, changed
        gc.collect()
        assert all(ref() is None for ref in dropped)  # memory stays flat
        assert await uow.get(User, kept.id) is kept  # what the caller holds is the one
        await uow.commit()
    async with pg_harness.uow(org) as uow:
        stored = await uow.require(User, ids[1])
        assert stored.full_name == "Changed after add_all"
        assert stored.version == 2
        assert await uow.count(User) == 50
