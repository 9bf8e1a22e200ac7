"""Read-through caching over any `Cache`, invalidation after commit, and adapter counters.

How a cached read works (`ReadThroughCache.fetch`):

1. Read the tenant's generation of the namespace and of the item (`{t}:gen:<ns>` and
   `{t}:igen:<ns>:<parts>`), one round trip. Absent generations count as "0".
2. Look up the value under a key that embeds both: `{t}:<ns>:<parts>@<ns-gen>.<item-gen>`.
3. On a miss, load once per process (single flight), then store under the key of step 2.

Invalidation replaces a generation with a fresh random token, so every key built from the
old one is orphaned at once (O(1), no SCAN) and expires by its TTL. Because the key stored
in step 3 embeds the generations read in step 1, *before* loading, a value loaded before a
concurrent commit is stored under an orphaned key and never served: a cache can only be as
stale as a read that overlapped the commit. The tenant id is the Redis Cluster hash tag,
so a tenant's values and generations share a slot.

If an invalidation cannot reach the cache, it is remembered and retried; until it lands,
this process reads the affected keys from the loader and caches nothing for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from datetime import date, datetime
from enum import Enum
from typing import Any, ParamSpec, TypeAlias, TypeVar, cast, get_type_hints
from uuid import UUID

from attrs import frozen

from edu_domain.caching import LATENCY_BUCKETS_MS, Cache, CacheKey, CacheStats, NoReadCache
from edu_domain.model import EducationalContent, LoginSession, Organization, User
from edu_domain.model.base import Entity
from edu_domain.ports import Change, ChangeKind
from edu_infra.codec import CodecError, from_json, to_json

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

#: Seconds a cached read lives, per namespace. Override with `ReadThroughCache(ttls=...)`.
DEFAULT_TTLS: Mapping[str, float] = {"user": 300.0, "content_slug": 300.0, "stats": 60.0}

__all__ = [
    "DEFAULT_RULES",
    "DEFAULT_TTLS",
    "CacheInvalidator",
    "CacheMetrics",
    "Namespace",
    "RateLimitedLog",
    "ReadThroughCache",
    "cache_result",
    "versioned_key",
]


class RateLimitedLog:
    """Logs a warning at most once per `interval` seconds, counting the ones it held back.

    A dead cache fails every request; one line per request would drown the logs.
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._monotonic = monotonic
        self._last: float | None = None
        self._suppressed = 0

    def warning(self, message: str, *args: object) -> bool:
        """Log now (returns True) or count it as suppressed (returns False)."""
        now = self._monotonic()
        if self._last is not None and now - self._last < self._interval:
            self._suppressed += 1
            return False
        suppressed, self._suppressed, self._last = self._suppressed, 0, now
        suffix = f" ({suppressed} similar messages suppressed)" if suppressed else ""
        self._logger.warning(message + suffix, *args)
        return True


class CacheMetrics:
    """Mutable counters behind an adapter's `stats()`; cheap enough for every operation."""

    def __init__(self, *, log_interval: float = 10.0) -> None:
        self._hits = self._misses = self._sets = self._deletes = 0
        self._errors = self._decode_errors = self._short_circuited = 0
        self._operations = 0
        self._latency_total = self._latency_max = 0.0
        self._buckets = [0] * (len(LATENCY_BUCKETS_MS) + 1)
        self._decode_log = RateLimitedLog(log, log_interval)

    def hit(self, n: int = 1) -> None:
        self._hits += n

    def miss(self, n: int = 1) -> None:
        self._misses += n

    def stored(self, n: int = 1) -> None:
        self._sets += n

    def deleted(self, n: int) -> None:
        self._deletes += n

    def error(self) -> None:
        self._errors += 1

    def short_circuit(self) -> None:
        self._short_circuited += 1

    def decode_error(self, key: str, exc: Exception) -> None:
        """A stored value was not JSON: it is served as a miss (and the caller deletes it)."""
        self._decode_errors += 1
        self._misses += 1
        self._decode_log.warning("cache entry %r is not valid JSON, dropped: %s", key, exc)

    def observe(self, started: float) -> None:
        """Record one backend round trip that began at `started` (a perf_counter value)."""
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        self._operations += 1
        self._latency_total += elapsed_ms
        self._latency_max = max(self._latency_max, elapsed_ms)
        for i, bound in enumerate(LATENCY_BUCKETS_MS):
            if elapsed_ms <= bound:
                self._buckets[i] += 1
                break
        else:
            self._buckets[-1] += 1

    def snapshot(self) -> CacheStats:
        return CacheStats(
            hits=self._hits,
            misses=self._misses,
            sets=self._sets,
            deletes=self._deletes,
            errors=self._errors,
            decode_errors=self._decode_errors,
            short_circuited=self._short_circuited,
            operations=self._operations,
            latency_total_ms=self._latency_total,
            latency_max_ms=self._latency_max,
            latency_buckets=tuple(self._buckets),
        )


@frozen
class Namespace:
    """All cached reads of one namespace of one tenant (invalidated by a generation bump)."""

    tenant: UUID
    namespace: str


Invalidation: TypeAlias = CacheKey | Namespace


class _LeaderCancelled(Exception):
    """The load a caller was waiting for was cancelled (not the caller itself)."""


_NO_GENERATION = "0"
_STRAGGLER_WINDOW = 1.0  # seconds
_UNCACHEABLE: Any = object()


def _escape(part: str) -> str:
    return part.replace("%", "%25").replace(":", "%3A").replace("@", "%40")


class ReadThroughCache:
    """`ReadCache` over a `Cache`: generation-keyed entries, single flight, fail-open.

    `ttls` maps namespaces to seconds (missing ones use `default_ttl`). Generations live
    `generation_ttl` seconds after their last bump; that must comfortably exceed every TTL,
    or an expired generation could make an old entry readable again. `cross_process_lock`
    adds a short SET NX lock so that one process per key loads on a miss; the others poll
    for `lock_wait` seconds, then load anyway.
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
        retry_interval: float = 0.5,
        max_pending: int = 10_000,
    ) -> None:
        self.cache = cache
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
        self._retry_interval = retry_interval
        self._max_pending = max_pending
        self._flights: dict[tuple[str, int], asyncio.Future[Any]] = {}
        self._landed: dict[tuple[str, int], float] = {}
        self._epoch = 0
        self._pending: dict[Invalidation, None] = {}
        self._last_retry = float("-inf")
        self._bypass_until = float("-inf")
        self._log = RateLimitedLog(log)

    # -- keys ---------------------------------------------------------------------------

    @staticmethod
    def tenant_tag(tenant: UUID) -> str:
        """The Redis Cluster hash tag of a tenant: all its keys hash to one slot."""
        return "{" + str(tenant) + "}"

    def namespace_generation_key(self, tenant: UUID, namespace: str) -> str:
        return f"{self.tenant_tag(tenant)}:gen:{_escape(namespace)}"

    def item_generation_key(self, key: CacheKey) -> str:
        parts = ":".join(_escape(p) for p in key.parts)
        return f"{self.tenant_tag(key.tenant)}:igen:{_escape(key.namespace)}:{parts}"

    def storage_key(self, key: CacheKey, generations: Sequence[Any | None]) -> str:
        """Where `key`'s value lives under the given (namespace, item) generations."""
        return versioned_key(self._storage_base(key), generations)

    def _storage_base(self, key: CacheKey) -> str:
        parts = ":".join(_escape(p) for p in key.parts)
        base = f"{self.tenant_tag(key.tenant)}:{_escape(key.namespace)}"
        return f"{base}:{parts}" if parts else base

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
            except _LeaderCancelled:
                continue  # the load we waited for was cancelled: look again

    async def _fetch(
        self, key: CacheKey, load: Callable[[], Awaitable[T]], type_: Any, expire: float | None
    ) -> T:
        if self._pending:
            await self._retry_pending()
        if self._bypassed(key):
            return await load()
        gen_keys = [self.namespace_generation_key(key.tenant, key.namespace)]
        gen_keys.append(self.item_generation_key(key))
        found = await self.cache.get_versioned(gen_keys, self._storage_base(key))
        if found is None:
            return await self._single_flight(f"?{gen_keys[1]}", load, type_, store=None)
        generations, data = found
        storage_key = self.storage_key(key, generations)
        if data is not None:
            try:
                return cast(T, from_json(data, type_))
            except CodecError as exc:
                self._log.warning("cached %s does not decode, reloading: %s", storage_key, exc)
                await self.cache.delete(storage_key)
        ttl = expire if expire is not None else self.ttl_of(key.namespace)
        ttl = min(ttl, self.generation_ttl / 2)
        return await self._single_flight(storage_key, load, type_, store=(key, storage_key, ttl))

    async def _single_flight(
        self,
        flight_key: str,
        load: Callable[[], Awaitable[T]],
        type_: Any,
        store: tuple[CacheKey, str, float] | None,
    ) -> T:
        """Run `load` once for concurrent callers of one key; the others get decoded copies.

        The flight key includes a local epoch bumped by every invalidation, so a read that
        starts after an invalidation never joins a load that started before it.
        """
        token = (flight_key, self._epoch)
        flight = self._flights.get(token)
        if flight is not None:
            try:
                data = await asyncio.shield(flight)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if flight.cancelled() and not (current and current.cancelling()):
                    raise _LeaderCancelled from None
                raise
            if data is None:
                return cast(T, None)
            if data is not _UNCACHEABLE:
                try:
                    return cast(T, from_json(data, type_))
                except CodecError as exc:  # the loader's value does not fit `type_`
                    self._log.warning("loaded value does not decode as %s: %s", type_, exc)
            return await load()

        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._flights[token] = future
        try:
            value, data = await self._load(load, type_, store, recheck=self._landed_lately(token))
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: nobody may be waiting
            raise
        except BaseException:  # cancelled (or the process is stopping): waiters look again
            future.cancel()
            raise
        else:
            future.set_result(data)
            if store is not None:
                self._land(token)
            return value
        finally:
            if self._flights.get(token) is future:
                del self._flights[token]

    def _landed_lately(self, token: tuple[str, int]) -> bool:
        landed = self._landed.get(token)
        return landed is not None and time.monotonic() - landed < _STRAGGLER_WINDOW

    def _land(self, token: tuple[str, int]) -> None:
        """Remember that a load of `token` just stored its value, for stragglers.

        A caller that missed just before the store but looked for the flight just after it
        ended would load again; it checks the cache once more instead.
        """
        now = time.monotonic()
        if len(self._landed) >= 1024:
            self._landed = {t: at for t, at in self._landed.items() if now - at < _STRAGGLER_WINDOW}
        self._landed[token] = now

    async def _load(
        self,
        load: Callable[[], Awaitable[T]],
        type_: Any,
        store: tuple[CacheKey, str, float] | None,
        *,
        recheck: bool = False,
    ) -> tuple[T, Any]:
        """Load (under the cross-process lock if enabled) and store; (value, JSON data)."""
        if store is not None and recheck:
            data = await self.cache.get(store[1])
            if data is not None:
                with contextlib.suppress(CodecError):
                    return from_json(data, type_), data
        lock_key = None
        if store is not None and self.cross_process_lock:
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
                if not self._bypassed(key):
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
                    return from_json(data, type_), data
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
        could not be reached: the invalidation is then retried, and this process bypasses
        the cache for the key until it lands.
        """
        self._epoch += 1
        item_gen_key = self.item_generation_key(key)
        generations = await self.cache.try_get_many(
            [self.namespace_generation_key(key.tenant, key.namespace), item_gen_key]
        )
        bumped = await self.cache.set(item_gen_key, _new_generation(), self.generation_ttl)
        if generations is not None:
            await self.cache.delete(self.storage_key(key, generations))
        if not bumped:
            self._remember(key)
        return bumped

    async def invalidate_namespace(self, tenant: UUID, namespace: str) -> bool:
        """Forget every cached read of a tenant's namespace in O(1) (the old invalidate_cache).

        False when the cache could not be reached (then retried as for `invalidate`).
        """
        self._epoch += 1
        key = self.namespace_generation_key(tenant, namespace)
        bumped = await self.cache.set(key, _new_generation(), self.generation_ttl)
        if not bumped:
            self._remember(Namespace(tenant, namespace))
        return bumped

    async def apply(self, target: Invalidation) -> bool:
        if isinstance(target, Namespace):
            return await self.invalidate_namespace(target.tenant, target.namespace)
        return await self.invalidate(target)

    @property
    def pending_invalidations(self) -> int:
        return len(self._pending)

    def _remember(self, target: Invalidation) -> None:
        if len(self._pending) >= self._max_pending:
            # Too much to track: stop trusting the cache in this process for a while.
            self._pending.clear()
            self._bypass_until = time.monotonic() + max(self.ttls.values(), default=60.0)
            self._log.warning("too many failed invalidations: cache bypassed for a TTL")
            return
        self._pending[target] = None
        self._log.warning("cache invalidation of %s failed; will retry", target)

    async def _retry_pending(self) -> None:
        now = time.monotonic()
        if now - self._last_retry < self._retry_interval:
            return
        self._last_retry = now
        for target in list(self._pending):
            self._pending.pop(target, None)
            if not await self.apply(target):
                break  # apply() put it back; the cache is still unreachable

    def _bypassed(self, key: CacheKey) -> bool:
        if time.monotonic() < self._bypass_until:
            return True
        if not self._pending:
            return False
        return key in self._pending or Namespace(key.tenant, key.namespace) in self._pending

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


def _generation(value: Any | None) -> str:
    return _NO_GENERATION if value is None else str(value)


def versioned_key(base: str, generations: Sequence[Any | None]) -> str:
    """`base@<g1>.<g2>...`: where a value lives under these generations (see `Cache`)."""
    return base + "@" + ".".join(_generation(g) for g in generations)


def _new_generation() -> str:
    """A fresh, never-repeating generation (random, so an expired one cannot come back)."""
    return secrets.token_hex(6)


# -- cache_result -------------------------------------------------------------------------


def _key_value(name: str, value: Any) -> Any:
    """A type-tagged, JSON-able form of an argument: `"1"` and `1`, `None` and `"None"`,
    `["a,b"]` and `["a", "b"]` must never share a key."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, Enum):
        return ["enum", type(value).__name__, _key_value(name, value.value)]
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return ["num", repr(value)]
    if isinstance(value, UUID):
        return ["uuid", str(value)]
    if isinstance(value, datetime | date):
        return [type(value).__name__, value.isoformat()]
    if isinstance(value, tuple | list):
        return ["seq", [_key_value(name, v) for v in value]]
    if isinstance(value, frozenset | set):
        return ["set", sorted((_key_value(name, v) for v in value), key=json.dumps)]
    raise TypeError(
        f"argument {name!r} ({type(value).__name__}) cannot be part of a cache key; "
        "list it in ignore=(...) if it does not change the result"
    )


def _key_part(name: str, value: Any) -> str:
    return f"{name}=" + json.dumps(_key_value(name, value), separators=(",", ":"))


def cache_result(
    reads: ReadThroughCache | NoReadCache,
    *,
    prefix: str,
    expire: float | None = None,
    tenant: str = "tenant",
    ignore: Collection[str] = (),
    type_: Any = None,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Cache an async function's result per tenant and arguments (the old API's decorator).

    The key is `{tenant}:<prefix>:<module.qualname>:<arg=value>...` from the bound
    arguments: the `tenant` argument (a UUID) scopes it, `ignore` names arguments that do
    not change the result (a session, a unit of work). Other arguments must be plain values
    (str, numbers, UUIDs, enums, dates, and tuples/lists/sets of them). The result is
    decoded as the return annotation, or `type_`. `reads.invalidate_namespace(t, prefix)`
    drops every result of the prefix for a tenant.
    """

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        signature = inspect.signature(fn)
        if tenant not in signature.parameters:
            raise TypeError(f"{fn.__qualname__} has no {tenant!r} argument to scope the cache")
        name = f"{fn.__module__}.{fn.__qualname__}"

        @functools.cache
        def result_type() -> Any:
            return type_ if type_ is not None else get_type_hints(fn).get("return", Any)

        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            owner = bound.arguments[tenant]
            owner = owner if isinstance(owner, UUID) else UUID(str(owner))
            parts = tuple(
                _key_part(arg, value)
                for arg, value in bound.arguments.items()
                if arg != tenant and arg not in ignore
            )
            key = CacheKey(prefix, owner, (name, *parts))
            return await reads.fetch(key, lambda: fn(*args, **kwargs), result_type(), expire=expire)

        return wrapper

    return decorate


# -- invalidation after commit -----------------------------------------------------------

Rule: TypeAlias = Callable[[Change, UUID], Iterable[Invalidation]]


def _user_rule(change: Change, tenant: UUID) -> Iterable[Invalidation]:
    # A new user cannot be cached yet (None is never cached): only the stats change.
    if change.kind is not ChangeKind.INSERT:
        yield CacheKey("user", tenant, (str(change.id),))
    yield Namespace(tenant, "stats")


def _stats_rule(change: Change, tenant: UUID) -> Iterable[Invalidation]:
    yield Namespace(tenant, "stats")


def _content_rule(change: Change, tenant: UUID) -> Iterable[Invalidation]:
    yield Namespace(tenant, "content_slug")


def _org_rule(change: Change, tenant: UUID) -> Iterable[Invalidation]:
    yield Namespace(tenant, "org")


#: What a committed change of each entity class invalidates (subclasses included).
DEFAULT_RULES: Mapping[type[Entity], Rule] = {
    User: _user_rule,
    LoginSession: _stats_rule,
    EducationalContent: _content_rule,
    Organization: _org_rule,
}


class CacheInvalidator:
    """A `CommitListener`: after a commit, invalidates what the changed entities affect.

    The unit of work calls it only after a successful commit, so a rollback invalidates
    nothing. It never raises: the commit has already happened, and an error here must not
    make the caller believe otherwise.
    """

    def __init__(
        self,
        reads: ReadThroughCache,
        rules: Mapping[type[Entity], Rule] = DEFAULT_RULES,
        *,
        concurrency: int = 32,
    ) -> None:
        self.reads = reads
        self.rules = dict(rules)
        self._concurrency = concurrency

    def targets(self, changes: Sequence[Change]) -> list[Invalidation]:
        """The distinct invalidations `changes` call for, in first-seen order."""
        found: dict[Invalidation, None] = {}
        for change in changes:
            tenant = change.organization_id
            if tenant is None and issubclass(change.entity, Organization):
                tenant = change.id
            if tenant is None:
                continue
            for cls, rule in self.rules.items():
                if issubclass(change.entity, cls):
                    found.update(dict.fromkeys(rule(change, tenant)))
        return list(found)

    async def committed(self, changes: Sequence[Change]) -> None:
        targets = self.targets(changes)
        for start in range(0, len(targets), self._concurrency):
            batch = targets[start : start + self._concurrency]
            results = await asyncio.gather(
                *(self.reads.apply(t) for t in batch), return_exceptions=True
            )
            for target, result in zip(batch, results, strict=True):
                if isinstance(result, BaseException):
                    log.error("cache invalidation of %s raised", target, exc_info=result)
