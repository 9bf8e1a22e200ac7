"""Counters behind an adapter's `stats()`, and a log that does not drown when Redis is down."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from edu_domain.caching import LATENCY_BUCKETS_MS, CacheStats

log = logging.getLogger("edu_infra.caching")

__all__ = ["CacheMetrics", "RateLimitedLog"]


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
