"""`ReadThroughCache`: generation-keyed cached reads, single flight, fail-open, coherent.

How a cached read works (`ReadThroughCache.fetch`):

1. One round trip (`Cache.get_versioned`) reads the backend's epoch, the tenant's generation
   of the namespace and of the item (`{t}:gen:<ns>`, `{t}:igen:<ns>:<parts>`; an absent
   one is created there and then as a fresh random value), and the value under the key
   they select: `{t}:<ns>:<parts>@<epoch>.<ns-gen>.<item-gen>`.
2. On a miss, load once per process (single flight), then store under the key of step 1.

Invalidation replaces a generation with a fresh random token, so every key built from the
old one is orphaned at once (O(1), no SCAN) and expires by its TTL. Because the key stored
in step 2 embeds the generations read *before* loading, a value loaded before a concurrent
commit is stored under an orphaned key and never served. No generation is ever used twice:
one that was lost (FLUSHDB, `delete_pattern`, eviction, expiry) is recreated as a new
random value, so a slow reader's late store under the lost one stays orphaned. The tenant id is the Redis
Cluster hash tag, so a tenant's values and generations share a slot.

Coherence when the backend fails (README, "Caching", "Coherence across instances"):
- The epoch is the backend's dataset history (on Redis, its replication id, which changes
  on every restart and every promotion of a replica). A backend that came back from a
  snapshot, an AOF that lost its tail, or a lagging replica may have lost invalidations:
  its new epoch orphans every value stored before.
- An invalidation that could not reach the backend is retried in the background
  (`PendingInvalidations`) until it lands; meanwhile this process reads the affected keys
  from the loader and stores nothing for them.
- A process that saw the backend fail serves no cached value for `outage_fence` seconds
  after it answers again, which covers the time other writers need to deliver theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar, cast
from uuid import UUID

from edu_domain.caching import Cache, CacheKey
from edu_infra.caching.decoded import DecodedValues
from edu_infra.caching.decorator import cache_result
from edu_infra.caching.flights import Flights, LeaderCancelled
from edu_infra.caching.keys import (
    Invalidation,
    Namespace,
    StorageKeys,
    new_generation,
    usable_generations,
    versioned_key,
)
from edu_infra.caching.metrics import RateLimitedLog
from edu_infra.caching.pending import PendingInvalidations
from edu_infra.codec import CodecError, to_json

log = logging.getLogger("edu_infra.caching")

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

#: Seconds a cached read lives, per namespace. Override with `ReadThroughCache(ttls=...)`.
DEFAULT_TTLS: Mapping[str, float] = {"user": 300.0, "content_slug": 300.0, "stats": 60.0}

#: Seconds between two attempts to deliver failed invalidations.
DEFAULT_RETRY_INTERVAL = 0.1
#: Seconds a process that saw the cache fail distrusts stored values once it answers again.
DEFAULT_OUTAGE_FENCE = 0.5
#: Seconds `aclose` keeps trying to deliver pending invalidations before dropping them.
DEFAULT_CLOSE_GRACE = 1.0

__all__ = [
    "DEFAULT_CLOSE_GRACE",
    "DEFAULT_OUTAGE_FENCE",
    "DEFAULT_RETRY_INTERVAL",
    "DEFAULT_TTLS",
    "ReadThroughCache",
]


_DELIVERY_BATCH = 500  # generation bumps per `set_many` when delivering pending ones
_UNCACHEABLE: Any = object()


class ReadThroughCache(StorageKeys):
    """`ReadCache` over a `Cache`: generation-keyed entries, single flight, fail-open.

    `ttls` maps namespaces to seconds (missing ones use `default_ttl`). Generations live
    `generation_ttl` seconds after they were created or bumped; an expired one comes back
    as a new random value, which orphans the entries it guarded (a cold read, never a
    stale one), so it must comfortably exceed every TTL to keep hits. `cross_process_lock`
    adds a short SET NX lock so that one process per key loads on a miss; the others poll
    for `lock_wait` seconds, then load anyway. Failed invalidations are retried every
    `retry_interval` seconds; past `max_pending` of them, whole namespaces are invalidated.
    `outage_fence` must exceed `retry_interval` plus the cache's operation deadline: it is
    how long after an outage this process waits for other writers' retries to land.
    `close_grace` is how long `aclose` keeps trying to deliver pending invalidations: a
    process that closes while the cache is unreachable for longer drops them, as if it died.
    """

    def __init__(
        self,
        cache: Cache,
        *,
        ttls: Mapping[str, float] | None = None,
        default_ttl: float = 60.0,
        generation_ttl: float = 86_400.0,
        cross_process_lock: bool = False,
        lock_ttl: float = 0.5,
        lock_wait: float = 0.5,
        lock_poll: float = 0.02,
        retry_interval: float = DEFAULT_RETRY_INTERVAL,
        outage_fence: float = DEFAULT_OUTAGE_FENCE,
        max_pending: int = 10_000,
        close_grace: float = DEFAULT_CLOSE_GRACE,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.cache = cache
        self._decoded = DecodedValues()
        self.ttls: dict[str, float] = {**DEFAULT_TTLS, **(ttls or {})}
        self.default_ttl = default_ttl
        self.generation_ttl = generation_ttl
        longest = max([default_ttl, *self.ttls.values()])
        if generation_ttl < 2 * longest:
            raise ValueError(
                f"generation_ttl ({generation_ttl}s) must be at least twice the longest TTL "
                f"({longest}s)"
            )
        self.cross_process_lock = cross_process_lock
        self.lock_ttl = lock_ttl
        self.lock_wait = lock_wait
        self.lock_poll = lock_poll
        self.outage_fence = outage_fence
        self.close_grace = close_grace
        self._monotonic = monotonic
        self._flights = Flights()
        self._pending = PendingInvalidations(
            self._deliver,
            cache.health_check,
            retry_interval=retry_interval,
            max_items=max_pending,
        )
        self._outage = False
        self._fenced_until = float("-inf")
        self._log = RateLimitedLog(log)

    def ttl_of(self, namespace: str) -> float:
        return self.ttls.get(namespace, self.default_ttl)

    # -- reads --------------------------------------------------------------------------

    async def fetch(
        self,
        key: CacheKey,
        load: Callable[[], Awaitable[T]],
        type_: Any,
        *,
        expire: float | None = None,
    ) -> T:
        """The cached value of `key` as a detached `type_`, or `load()`'s (then cached).

        None results are not cached. Errors from `load` propagate to every caller waiting on
        the same miss, and nothing is cached.
        """
        while True:
            try:
                return await self._fetch(key, load, type_, expire)
            except LeaderCancelled:
                continue  # the load we waited for was cancelled: look again

    async def _fetch(
        self, key: CacheKey, load: Callable[[], Awaitable[T]], type_: Any, expire: float | None
    ) -> T:
        if self._pending.covers(key):
            return await load()
        gen_keys, base = self.read_keys(key)
        found = await self.cache.get_versioned(gen_keys, base, self.generation_ttl)
        if found is None:
            self._outage = True
            return await self._single_flight(f"?{gen_keys[1]}", load, type_, store=None)
        generations, data = found
        if not usable_generations(generations):  # an adapter that named no generation
            return await self._single_flight(f"?{gen_keys[1]}", load, type_, store=None)
        storage_key = versioned_key(base, [str(g) for g in generations])
        trusted = not self._fenced()
        if data is not None and trusted:
            try:
                return cast(T, self._decoded.decode(data, type_))
            except CodecError as exc:
                self._log.warning("cached %s does not decode, reloading: %s", storage_key, exc)
                await self.cache.delete(storage_key)
        ttl = expire if expire is not None else self.ttl_of(key.namespace)
        ttl = min(ttl, self.generation_ttl / 2)
        store = (key, storage_key, ttl)
        if not trusted:  # a fenced load must not join (or wait for) one that may predate it
            return await self._single_flight(f"!{storage_key}", load, type_, store, trusted)
        return await self._single_flight(storage_key, load, type_, store)

    def _fenced(self) -> bool:
        """After an outage, distrust stored values for `outage_fence` seconds.

        Only the writers know which invalidations they could not deliver; each retries
        within its `retry_interval` plus one operation deadline once the cache answers it,
        which the fence must exceed. Values loaded during the fence are stored: they
        are at least as new as every commit that came before the fence began.
        """
        now = self._monotonic()
        if self._outage:
            self._outage = False
            self._fenced_until = now + self.outage_fence
        return now < self._fenced_until

    async def _single_flight(
        self,
        flight_key: str,
        load: Callable[[], Awaitable[T]],
        type_: Any,
        store: tuple[CacheKey, str, float] | None,
        trusted: bool = True,
    ) -> T:
        """Run `load` once for concurrent callers of one key; the others get decoded copies."""

        async def lead(landed_lately: bool) -> tuple[T, Any]:
            recheck = trusted and landed_lately
            return await self._load(load, type_, store, recheck=recheck, trusted=trusted)

        async def follow(data: Any) -> T:
            if data is None:
                return cast(T, None)
            if data is not _UNCACHEABLE:
                try:
                    return cast(T, self._decoded.decode(data, type_))
                except CodecError as exc:  # the loader's value does not fit `type_`
                    self._log.warning("loaded value does not decode as %s: %s", type_, exc)
            return await load()

        return await self._flights.run(flight_key, lead, follow, lands=store is not None)

    async def _load(
        self,
        load: Callable[[], Awaitable[T]],
        type_: Any,
        store: tuple[CacheKey, str, float] | None,
        *,
        recheck: bool = False,
        trusted: bool = True,
    ) -> tuple[T, Any]:
        """Load (under the cross-process lock if enabled) and store; (value, JSON data)."""
        if store is not None and recheck:
            data = await self.cache.get(store[1])
            if data is not None:
                with contextlib.suppress(CodecError):
                    return self._decoded.decode(data, type_), data
        lock_key = None
        if store is not None and self.cross_process_lock and trusted:
            lock_key = store[1] + ":lock"
            owner = secrets.token_hex(8)
            acquired = await self.cache.add(lock_key, owner, expire=self.lock_ttl)
            if acquired is False:
                lock_key = None
                found = await self._await_other_loader(store[1], type_)
                if found is not None:
                    return found
            elif acquired is None:
                lock_key = None
        try:
            value = await load()
            data = self._encode(value, type_)
            if store is not None and data is not None and data is not _UNCACHEABLE:
                key, storage_key, ttl = store
                if not self._pending.covers(key):
                    await self.cache.set(storage_key, data, expire=ttl)
            return value, data
        finally:
            if lock_key is not None:
                await self.cache.delete(lock_key)

    async def _await_other_loader(self, storage_key: str, type_: Any) -> tuple[Any, Any] | None:
        deadline = time.monotonic() + self.lock_wait
        while time.monotonic() < deadline:
            await asyncio.sleep(self.lock_poll)
            data = await self.cache.get(storage_key)
            if data is not None:
                try:
                    return self._decoded.decode(data, type_), data
                except CodecError:
                    return None
        return None

    def _encode(self, value: Any, type_: Any) -> Any:
        if value is None:
            return None
        try:
            return to_json(value, type_)
        except CodecError as exc:
            self._log.warning("value of type %s is not cacheable: %s", type(value).__name__, exc)
            return _UNCACHEABLE

    # -- invalidation -------------------------------------------------------------------

    async def invalidate(self, key: CacheKey) -> bool:
        """Forget one cached read (call after the commit that changed it).

        Bumps the item's generation, then deletes the entry it orphaned. False when the cache
        could not be reached: the invalidation is then delivered in the background, and this
        process bypasses the cache for the key until it lands.
        """
        self._flights.bump()
        mark = self._pending.mark()
        gen_keys, base = self.read_keys(key)
        found = await self.cache.get_versioned(gen_keys, base, self.generation_ttl)
        bumped = await self.cache.set(
            self.item_generation_key(key), new_generation(), self.generation_ttl
        )
        if found is not None and found[1] is not None and usable_generations(found[0]):
            await self.cache.delete(versioned_key(base, [str(g) for g in found[0]]))
        self._settle(key, mark, bumped)
        return bumped

    async def invalidate_namespace(self, tenant: UUID, namespace: str) -> bool:
        """Forget every cached read of a tenant's namespace in O(1) (the old invalidate_cache).

        False when the cache could not be reached (then delivered later, as for `invalidate`).
        """
        self._flights.bump()
        mark = self._pending.mark()
        key = self.namespace_generation_key(tenant, namespace)
        bumped = await self.cache.set(key, new_generation(), self.generation_ttl)
        self._settle(Namespace(tenant, namespace), mark, bumped)
        return bumped

    async def apply(self, target: Invalidation) -> bool:
        if isinstance(target, Namespace):
            return await self.invalidate_namespace(target.tenant, target.namespace)
        return await self.invalidate(target)

    def _settle(self, target: Invalidation, mark: int, bumped: bool) -> None:
        if bumped:
            self._pending.settle(target, mark)  # a newer bump covers an older failed one
        else:
            self._outage = True
            self._pending.add(target)
            self._log.warning("cache invalidation of %s failed; will retry", target)

    @property
    def pending_invalidations(self) -> int:
        """Failed invalidations not delivered yet (each item, or a whole namespace)."""
        return len(self._pending)

    async def flush_pending(self) -> bool:
        """Deliver pending invalidations now (the background task does it on its own)."""
        return await self._pending.flush()

    async def aclose(self) -> None:
        """Stop the background delivery after trying for up to `close_grace` seconds.

        Invalidations still pending then are dropped (logged): other instances may serve
        those entries until their TTL.
        """
        await self._pending.aclose(self.close_grace)

    async def _deliver(self, targets: Sequence[Invalidation]) -> int:
        """Bump the generations of `targets` in batches; how many (a prefix) landed."""
        self._flights.bump()
        landed = 0
        for start in range(0, len(targets), _DELIVERY_BATCH):
            batch = targets[start : start + _DELIVERY_BATCH]
            bumps = {self._generation_key(target): new_generation() for target in batch}
            if not await self.cache.set_many(bumps, expire=self.generation_ttl):
                break
            landed += len(batch)
        return landed

    def _generation_key(self, target: Invalidation) -> str:
        if isinstance(target, Namespace):
            return self.namespace_generation_key(target.tenant, target.namespace)
        return self.item_generation_key(target)

    # -- decorator ----------------------------------------------------------------------

    def cached(
        self,
        *,
        prefix: str,
        expire: float | None = None,
        tenant: str = "tenant",
        ignore: Collection[str] = (),
        type_: Any = None,
    ) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
        """`cache_result` bound to this cache."""
        return cache_result(
            self, prefix=prefix, expire=expire, tenant=tenant, ignore=ignore, type_=type_
        )
