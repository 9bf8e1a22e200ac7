"""`PendingInvalidations` on its own: what it keeps, when it collapses, what settles it, and
how its delivery task and `aclose` behave. `test_coherence.py` covers it through
`ReadThroughCache`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from uuid import UUID

import pytest

from edu_domain.caching import CacheKey
from edu_infra.caching import Invalidation, Namespace, PendingInvalidations

T1 = UUID("00000000-0000-0000-0000-0000000000a1")
T2 = UUID("00000000-0000-0000-0000-0000000000b2")
TASK = "edu-cache-pending-invalidations"


def user(tenant: UUID, n: int) -> CacheKey:
    return CacheKey("user", tenant, (str(n),))


class Backend:
    """The cache as `PendingInvalidations` sees it: a probe and a delivery."""

    def __init__(self, *, up: bool = True) -> None:
        self.up = up
        self.delivered: list[Invalidation] = []
        self.probes = 0

    async def deliver(self, targets: Sequence[Invalidation]) -> int:
        if not self.up:
            return 0
        self.delivered.extend(targets)
        return len(targets)

    async def probe(self) -> bool:
        self.probes += 1
        return self.up


def pending_over(backend: Backend, *, max_items: int = 10) -> PendingInvalidations:
    return PendingInvalidations(
        backend.deliver, backend.probe, retry_interval=3600, max_items=max_items
    )


async def close(pending: PendingInvalidations, grace: float = 0) -> None:
    async with asyncio.timeout(10):  # a hang guard, not a measurement
        await pending.aclose(grace)


def delivery_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == TASK and not t.done()]


async def test_a_key_whose_namespace_is_pending_adds_nothing() -> None:
    pending = pending_over(Backend(up=False))
    pending.add(Namespace(T1, "user"))
    pending.add(user(T1, 1))
    assert len(pending) == 1
    assert pending.covers(user(T1, 2))
    await close(pending)


async def test_items_collapse_only_past_max_items() -> None:
    pending = pending_over(Backend(up=False), max_items=2)
    pending.add(user(T1, 1))
    pending.add(user(T1, 2))
    assert len(pending) == 2, "two items fit"
    assert not pending.covers(user(T1, 3))
    pending.add(user(T1, 3))
    assert len(pending) == 1, "the third collapses them into their namespace"
    assert pending.covers(user(T1, 4))
    await close(pending)


async def test_after_a_collapse_new_items_count_from_zero() -> None:
    pending = pending_over(Backend(up=False), max_items=2)
    for n in range(3):
        pending.add(user(T1, n))
    pending.add(user(T2, 1))
    pending.add(user(T2, 2))
    assert len(pending) == 3, "T1's namespace and two T2 items"
    assert not pending.covers(user(T2, 3))
    await close(pending)


async def test_delivered_items_free_their_places() -> None:
    backend = Backend()
    pending = pending_over(backend, max_items=2)
    pending.add(user(T1, 1))
    pending.add(user(T1, 2))
    assert await pending.flush() is True
    pending.add(user(T1, 3))
    pending.add(user(T1, 4))
    assert len(pending) == 2, "the delivered two no longer count"
    pending.add(user(T1, 5))
    assert len(pending) == 1, "the limit still applies"
    await close(pending)


async def test_settle_forgets_only_what_was_added_before_the_mark() -> None:
    pending = pending_over(Backend(up=False))
    pending.add(user(T1, 1))
    mark = pending.mark()
    pending.add(user(T1, 2))  # failed again after the settling operation began
    pending.settle(user(T1, 1), mark)
    pending.settle(user(T1, 2), mark)
    assert not pending.covers(user(T1, 1))
    assert pending.covers(user(T1, 2))
    assert len(pending) == 1
    await close(pending)


async def test_a_collapsed_namespace_keeps_its_newest_items_sequence() -> None:
    pending = pending_over(Backend(up=False), max_items=2)
    pending.add(user(T1, 1))
    pending.add(user(T1, 2))
    mark = pending.mark()
    pending.add(user(T1, 1))  # repeated after the mark
    pending.add(user(T2, 1))  # past max_items: everything collapses
    pending.settle(Namespace(T1, "user"), mark)
    assert pending.covers(user(T1, 1)), "the repeat came after the mark"
    pending.settle(Namespace(T1, "user"), pending.mark())
    assert not pending.covers(user(T1, 1))
    await close(pending)


async def test_one_delivery_task_however_many_failures() -> None:
    pending = pending_over(Backend(up=False))
    for n in range(3):
        pending.add(user(T1, n))
    assert len(delivery_tasks()) == 1
    await close(pending)
    assert delivery_tasks() == []


async def test_aclose_keeps_trying_until_the_cache_answers() -> None:
    backend = Backend(up=False)

    async def probe() -> bool:  # the cache answers from the third probe on
        backend.up = backend.probes >= 2
        return await backend.probe()

    pending = PendingInvalidations(backend.deliver, probe, retry_interval=0.01, max_items=5)
    pending.add(user(T1, 1))
    await close(pending, grace=30)
    assert backend.delivered == [user(T1, 1)]
    assert len(pending) == 0


async def test_aclose_gives_up_after_its_grace_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = Backend(up=False)
    pending = PendingInvalidations(backend.deliver, backend.probe, retry_interval=0.01, max_items=5)
    pending.add(user(T1, 1))
    with caplog.at_level(logging.WARNING, "edu_infra.caching"):
        await close(pending, grace=0.05)
    assert "1 cache invalidations undelivered" in caplog.text
    assert backend.delivered == []
    assert delivery_tasks() == []
