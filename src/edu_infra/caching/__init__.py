"""Read-through caching over any `Cache`, invalidation after commit, and adapter counters.

`ReadThroughCache` (read_through.py) serves cached reads and keeps them coherent across
instances, running one load per key at a time (flights.py); `CacheInvalidator`
(invalidation.py) tells it what a commit changed; `cache_result` (decorator.py) caches your
own functions; `PendingInvalidations` (pending.py) delivers the invalidations that could not
reach the cache; `CacheMetrics` (metrics.py) counts what an adapter does.
"""

from edu_infra.caching.decorator import cache_result
from edu_infra.caching.invalidation import DEFAULT_RULES, CacheInvalidator, Rule
from edu_infra.caching.keys import Invalidation, Namespace, versioned_key
from edu_infra.caching.metrics import CacheMetrics, RateLimitedLog
from edu_infra.caching.pending import PendingInvalidations
from edu_infra.caching.read_through import DEFAULT_TTLS, ReadThroughCache

__all__ = [
    "DEFAULT_RULES",
    "DEFAULT_TTLS",
    "CacheInvalidator",
    "CacheMetrics",
    "Invalidation",
    "Namespace",
    "PendingInvalidations",
    "RateLimitedLog",
    "ReadThroughCache",
    "Rule",
    "cache_result",
    "versioned_key",
]
