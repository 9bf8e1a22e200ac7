"""The Redis cache adapter (redis-py asyncio): standalone and cluster, failing open."""

from edu_infra.redis.breaker import BreakerState, CircuitBreaker
from edu_infra.redis.cache import RedisCache
from edu_infra.redis.urls import parse_cache_url

__all__ = ["BreakerState", "CircuitBreaker", "RedisCache", "parse_cache_url"]
