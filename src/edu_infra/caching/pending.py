"""Invalidations that could not reach the cache, delivered in the background until they land.

Only the writer knows what it failed to invalidate: until it lands, every other instance
can serve the old entry. So delivery cannot wait for the writer's next cached read (a
writer that never reads would leave the others stale for a TTL): a task retries every
`retry_interval` seconds from the moment something is pending until nothing is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from edu_domain.caching import CacheKey
from edu_infra.caching.keys import Invalidation, Namespace
from edu_infra.caching.metrics import RateLimitedLog

log = logging.getLogger("edu_infra.caching")

__all__ = ["PendingInvalidations"]

Deliver = Callable[[Sequence[Invalidation]], Awaitable[int]]


class PendingInvalidations:
    """The failed invalidations of one process, and the task that delivers them.

    `probe()` says whether the cache answers (past any circuit breaker, so that delivery
    does not wait for a cooldown); `deliver(targets)` applies them in order and returns how
    many landed. Past `max_items` pending item invalidations, items collapse into their
    namespaces: broader, but bounded by the tenants and namespaces written meanwhile.
    Every addition gets a sequence number, so an invalidation made again while a delivery
    is in flight is not forgotten when that (older) delivery lands.
    """

    def __init__(
        self,
        deliver: Deliver,
        probe: Callable[[], Awaitable[bool]],
        *,
        retry_interval: float,
        max_items: int,
    ) -> None:
        self._deliver = deliver
        self._probe = probe
        self.retry_interval = retry_interval
        self._max_items = max_items
        self._targets: dict[Invalidation, int] = {}
        self._items = 0
        self._sequence = 0
        self._task: asyncio.Task[None] | None = None
        self._log = RateLimitedLog(log)

    def __len__(self) -> int:
        return len(self._targets)

    def covers(self, key: CacheKey) -> bool:
        """Is an invalidation of `key` (or of its whole namespace) still pending?"""
        if not self._targets:
            return False
        return key in self._targets or Namespace(key.tenant, key.namespace) in self._targets

    def mark(self) -> int:
        """Now, in the sequence: `settle(target, mark)` forgets only what came before."""
        return self._sequence

    def add(self, target: Invalidation) -> None:
        """Remember a failed invalidation and make sure the delivery task runs."""
        self._sequence += 1
        if isinstance(target, CacheKey):
            namespace = Namespace(target.tenant, target.namespace)
            if namespace in self._targets:
                target = namespace  # covered already; renewed below
            elif target not in self._targets:
                if self._items >= self._max_items:
                    self._collapse()
                    target = namespace
                else:
                    self._items += 1
        self._targets[target] = self._sequence
        self._ensure_task()

    def settle(self, target: Invalidation, mark: int) -> None:
        """`target` was invalidated by an operation that began at `mark`: drop it if older."""
        sequence = self._targets.get(target)
        if sequence is not None and sequence <= mark:
            self._remove(target)

    async def flush(self) -> bool:
        """Try to deliver everything pending now; True when nothing is left."""
        batch = list(self._targets.items())
        if batch:
            landed = await self._deliver([target for target, _ in batch])
            for target, sequence in batch[:landed]:
                if self._targets.get(target) == sequence:
                    self._remove(target)
        return not self._targets

    async def aclose(self, grace: float = 1.0) -> None:
        """Stop the delivery task after trying to deliver for at most `grace` seconds.

        It probes and delivers every `retry_interval` until nothing is pending or `grace`
        runs out; what is still pending then is dropped (and logged).
        """
        if self._targets:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    while True:  # retries a backend, not a condition an event could signal
                        if await self._attempt():
                            break
                        await asyncio.sleep(self.retry_interval)
            if self._targets:
                log.warning(
                    "closing with %d cache invalidations undelivered: other instances may "
                    "serve those entries until their TTL",
                    len(self._targets),
                )
        task, self._task = self._task, None
        if task is not None and not task.done() and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _attempt(self) -> bool:
        """Probe, then deliver; True when nothing is left (a failure is logged, not raised)."""
        try:
            if await self._probe():
                return await self.flush()
        except Exception as exc:  # keep trying: the next round may succeed
            self._log.warning("delivering pending cache invalidations failed: %s", exc)
        return False

    def _remove(self, target: Invalidation) -> None:
        del self._targets[target]
        if isinstance(target, CacheKey):
            self._items -= 1

    def _collapse(self) -> None:
        collapsed: dict[Invalidation, int] = {}
        for target, sequence in self._targets.items():
            if isinstance(target, CacheKey):
                target = Namespace(target.tenant, target.namespace)
            collapsed[target] = max(sequence, collapsed.get(target, 0))
        self._targets, self._items = collapsed, 0
        self._log.warning(
            "more than %d failed cache invalidations: whole namespaces will be invalidated",
            self._max_items,
        )

    def _ensure_task(self) -> None:
        task = self._task
        loop = asyncio.get_running_loop()
        if task is not None and not task.done() and task.get_loop() is loop:
            return
        self._task = loop.create_task(self._run(), name="edu-cache-pending-invalidations")

    async def _run(self) -> None:
        try:
            while self._targets:
                await asyncio.sleep(self.retry_interval)
                await self._attempt()
        finally:
            if self._task is asyncio.current_task():
                self._task = None
