"""Run a unit-of-work block again when it lost a race or hit a transient failure."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from edu_domain.errors import ConcurrencyConflict, RetryableError

T = TypeVar("T")


async def retrying(
    block: Callable[[], Awaitable[T]],
    *,
    attempts: int = 5,
    on: tuple[type[Exception], ...] = (ConcurrencyConflict, RetryableError),
    base_delay: float = 0.005,
) -> T:
    """Await `block()` up to `attempts` times while it raises one of `on`.

    `block` must open its own unit of work, so every attempt starts from fresh state.
    The last error propagates unchanged.
    """
    for attempt in range(1, attempts + 1):
        try:
            return await block()
        except on:
            if attempt == attempts:
                raise
            await asyncio.sleep(base_delay * attempt * (0.5 + random.random()))  # noqa: S311
    raise AssertionError("unreachable")  # pragma: no cover
