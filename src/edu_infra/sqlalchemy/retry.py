"""Run a unit-of-work block again when the database says a retry may succeed.

The block must open its own unit of work, so each attempt starts from a clean transaction:

    await retrying(lambda: register(uow_factory, command))
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from edu_domain.errors import RetryableError, ValidationError

T = TypeVar("T")
log = logging.getLogger("edu_infra")


async def retrying(
    block: Callable[[], Awaitable[T]],
    *,
    attempts: int = 3,
    base_delay: float = 0.02,
    max_delay: float = 0.5,
) -> T:
    """Await `block()`; on RetryableError try again, up to `attempts` runs in all.

    Waits grow exponentially with full jitter (so competing retries spread out); the last
    RetryableError propagates when every attempt failed.
    """
    if attempts < 1:
        raise ValidationError("attempts", "must be at least 1")
    for attempt in range(1, attempts + 1):
        try:
            return await block()
        except RetryableError:
            if attempt == attempts:
                raise
            delay = min(max_delay, base_delay * 2 ** (attempt - 1))
            log.info("retrying a unit of work (attempt %d of %d)", attempt + 1, attempts)
            await asyncio.sleep(random.uniform(0, delay))  # noqa: S311 - jitter, not security
    raise AssertionError("unreachable")  # pragma: no cover


__all__ = ["retrying"]
