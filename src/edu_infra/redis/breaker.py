"""A small circuit breaker: after a burst of failures, skip the backend for a moment.

When Redis is down every call would wait for its connect timeout; with the breaker open a
call costs nothing. After the cooldown one probe goes through; its success closes the
circuit (the cache resumes by itself), its failure opens it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Opens after `threshold` consecutive failures, for `cooldown` seconds."""

    def __init__(
        self,
        *,
        threshold: int = 3,
        cooldown: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if threshold < 1 or cooldown < 0:
            raise ValueError("threshold must be >= 1 and cooldown >= 0")
        self.threshold = threshold
        self.cooldown = cooldown
        self._monotonic = monotonic
        self._failures = 0
        self._open_until: float | None = None
        self._probing = False
        self.opened = 0

    @property
    def state(self) -> BreakerState:
        if self._open_until is None:
            return BreakerState.CLOSED
        if self._probing or self._monotonic() >= self._open_until:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allow(self) -> bool:
        """May a call go to the backend now? In half-open state, only one probe at a time."""
        if self._open_until is None:
            return True
        if self._probing or self._monotonic() < self._open_until:
            return False
        self._probing = True
        return True

    def success(self) -> None:
        self._failures = 0
        self._open_until = None
        self._probing = False

    def failure(self) -> None:
        self._failures += 1
        if self._probing or self._failures >= self.threshold:
            if self._open_until is None or self._probing:
                self.opened += 1
            self._open_until = self._monotonic() + self.cooldown
            self._probing = False

    def abandon(self) -> None:
        """A call ended without an outcome (cancelled): let the next call probe instead."""
        self._probing = False
