"""An in-process cache with the Redis adapter's semantics, for tests and single-process use.

Values are stored as the same JSON bytes Redis would hold, so a test against this cache sees
exactly what production would: copies (never shared objects), and only JSON-encodable data.
Expiry follows the injected Clock, so tests move time by hand instead of sleeping.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from edu_domain.caching import CacheStats
from edu_domain.ports import Clock
from edu_infra.caching import CacheMetrics, versioned_key
from edu_infra.caching.keys import new_generation
from edu_infra.codec import CodecError, dumps, loads
from edu_infra.system import SystemClock

log = logging.getLogger(__name__)

__all__ = ["InMemoryCache", "redis_glob_to_regex"]


@lru_cache(maxsize=256)
def redis_glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a Redis glob: `*`, `?`, `[abc]`, `[^a]`, `[a-z]` and `\\` escapes.

    Not `fnmatch`: it negates with `[!...]` and has no escapes, so it would match differently
    from Redis's SCAN MATCH.
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        elif ch == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1 : i + 2] == "^" else i + 1)
            if end == -1:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1 : end]
                negate = body.startswith("^")
                body = body[1:] if negate else body
                escaped = "".join("\\" + c if c in "\\]^[" else c for c in body)
                out.append(f"[{'^' if negate else ''}{escaped}]")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


Entries = dict[str, tuple[bytes, datetime | None]]


class InMemoryCache:
    """The Cache port in a dict. Keys get `prefix`; TTLs run on `clock` (UTC wall time).

    Its epoch (see `Cache.get_versioned`) is drawn at construction and again by `restart`,
    which plays a Redis restart, from a `snapshot` or empty, for tests of what a cache
    must do when the server forgot writes it had acknowledged.
    """

    def __init__(self, *, clock: Clock | None = None, prefix: str = "edu:") -> None:
        self._clock: Clock = clock or SystemClock()
        self.prefix = prefix
        self._entries: Entries = {}
        self._metrics = CacheMetrics()
        self.epoch = secrets.token_hex(8)

    def stats(self) -> CacheStats:
        return self._metrics.snapshot()

    async def get(self, key: str) -> Any | None:
        started = time.perf_counter()
        value = self._get(self.prefix + key)
        self._metrics.observe(started)
        return value

    async def get_many(self, keys: Sequence[str]) -> list[Any | None]:
        started = time.perf_counter()
        values = [self._get(self.prefix + key) for key in keys]
        self._metrics.observe(started)
        return values

    async def try_get_many(self, keys: Sequence[str]) -> list[Any | None] | None:
        return await self.get_many(keys)

    async def get_versioned(
        self,
        generation_keys: Sequence[str],
        base: str,
        generation_ttl: float | None = None,
    ) -> tuple[list[Any | None], Any | None] | None:
        """As on Redis: a generation key without a string first gets a fresh random one."""
        _check_expire(generation_ttl)
        started = time.perf_counter()
        versions: list[Any | None] = [self.epoch]
        for key in generation_keys:
            generation = self._get(self.prefix + key)
            if not isinstance(generation, str):
                generation = new_generation()
                self._entries[self.prefix + key] = (
                    dumps(generation),
                    self._deadline(generation_ttl),
                )
            versions.append(generation)
        value = self._get(self.prefix + versioned_key(base, [str(v) for v in versions]))
        self._metrics.observe(started)
        return versions, value

    async def set(self, key: str, value: Any, expire: float | None = None) -> bool:
        return self._store({key: value}, expire, only_if_absent=False)

    async def add(self, key: str, value: Any, expire: float | None = None) -> bool | None:
        return self._store({key: value}, expire, only_if_absent=True)

    async def set_many(self, items: Mapping[str, Any], expire: float | None = None) -> bool:
        return self._store(items, expire, only_if_absent=False)

    async def delete(self, key: str) -> int:
        started = time.perf_counter()
        found = self._live(self.prefix + key) is not None
        self._entries.pop(self.prefix + key, None)
        self._metrics.deleted(int(found))
        self._metrics.observe(started)
        return int(found)

    async def delete_pattern(self, pattern: str) -> int:
        started = time.perf_counter()
        regex = redis_glob_to_regex(self.prefix + pattern)
        doomed = [k for k in list(self._entries) if regex.fullmatch(k) and self._live(k)]
        for k in doomed:
            del self._entries[k]
        self._metrics.deleted(len(doomed))
        self._metrics.observe(started)
        return len(doomed)

    async def exists(self, key: str) -> bool:
        started = time.perf_counter()
        found = self._live(self.prefix + key) is not None
        self._metrics.observe(started)
        return found

    async def increment(self, key: str, amount: int = 1, expire: float | None = None) -> int | None:
        """Like INCRBY: keeps the TTL unless `expire` is given; non-integers fail (None)."""
        _check_expire(expire)
        started = time.perf_counter()
        full = self.prefix + key
        entry = self._live(full)
        current: Any = 0 if entry is None else _parse(entry[0])
        if isinstance(current, bool) or not isinstance(current, int):
            self._metrics.error()
            log.warning("cache increment of %r failed: value is not an integer", key)
            return None
        new = current + amount
        if expire is not None:
            deadline = self._deadline(expire)
        else:
            deadline = entry[1] if entry is not None else None
        self._entries[full] = (dumps(new), deadline)
        self._metrics.observe(started)
        return new

    async def health_check(self) -> bool:
        return True

    def put_raw(self, key: str, raw: bytes, expire: float | None = None) -> None:
        """Store bytes as they are, bypassing the codec: simulates a corrupt or foreign entry."""
        self._entries[self.prefix + key] = (raw, self._deadline(expire))

    def ttl(self, key: str) -> float | None:
        """Seconds left before `key` expires; None when absent or without expiry."""
        entry = self._live(self.prefix + key)
        if entry is None or entry[1] is None:
            return None
        return (entry[1] - self._clock.now()).total_seconds()

    def stored_keys(self) -> list[str]:
        """Every live key, prefix included, sorted (for assertions in tests)."""
        return sorted(k for k in list(self._entries) if self._live(k) is not None)

    def clear(self) -> None:
        self._entries.clear()

    def snapshot(self) -> Entries:
        """A copy of every entry (what a Redis SAVE would write)."""
        return dict(self._entries)

    def restart(self, snapshot: Entries | None = None) -> None:
        """Play a server restart: the entries become `snapshot` (or none), the epoch changes."""
        self._entries = dict(snapshot or {})
        self.epoch = secrets.token_hex(8)

    def _store(
        self, items: Mapping[str, Any], expire: float | None, *, only_if_absent: bool
    ) -> bool:
        _check_expire(expire)
        try:
            encoded = {self.prefix + k: dumps(v) for k, v in items.items()}
        except CodecError as exc:
            self._metrics.error()
            log.warning("cache set skipped: %s", exc)
            return False
        started = time.perf_counter()
        if only_if_absent and any(self._live(k) is not None for k in encoded):
            self._metrics.observe(started)
            return False
        deadline = self._deadline(expire)
        for k, raw in encoded.items():
            self._entries[k] = (raw, deadline)
        self._metrics.stored(len(encoded))
        self._metrics.observe(started)
        return True

    def _get(self, full_key: str) -> Any | None:
        entry = self._live(full_key)
        if entry is None:
            self._metrics.miss()
            return None
        try:
            value = loads(entry[0])
        except CodecError as exc:
            self._metrics.decode_error(full_key, exc)
            self._entries.pop(full_key, None)
            return None
        self._metrics.hit()
        return value

    def _live(self, full_key: str) -> tuple[bytes, datetime | None] | None:
        entry = self._entries.get(full_key)
        if entry is None:
            return None
        if entry[1] is not None and entry[1] <= self._clock.now():
            del self._entries[full_key]
            return None
        return entry

    def _deadline(self, expire: float | None) -> datetime | None:
        return None if expire is None else self._clock.now() + timedelta(seconds=expire)


def _check_expire(expire: float | None) -> None:
    if expire is not None and not expire > 0:
        raise ValueError(f"expire must be a positive number of seconds, got {expire!r}")


def _parse(raw: bytes) -> Any:
    try:
        return loads(raw)
    except CodecError:
        return None
