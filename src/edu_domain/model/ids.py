"""Monotonic UUIDv7 (RFC 9562, section 6.2 method 1: a counter within the millisecond).

Layout: 48-bit Unix milliseconds, version 7, a 42-bit counter (the 12 bits of `rand_a` and
the top 30 bits of `rand_b`), variant, 32 random bits. The counter starts at a random value
below 2**41 each new millisecond (so it has at least 2**41 steps of room) and counts up
within it; should it ever run out, or the clock step back, the timestamp is carried forward
instead. So ids of one process are strictly increasing (index locality, the reason for v7),
and the random counter start plus 32 fresh random bits per id keep processes apart. A forked
child starts a fresh sequence.
"""

from __future__ import annotations

import os
import threading
import time
from uuid import UUID

_COUNTER_BITS = 42
_COUNTER_MAX = (1 << _COUNTER_BITS) - 1
_SEED_BITS = _COUNTER_BITS - 1  # leftmost counter bit starts at 0: room to count
_MILLIS_MASK = (1 << 48) - 1
_VERSION = 0x7 << 76
_VARIANT = 0b10 << 62


class Uuid7Sequence:
    """A thread-safe source of strictly increasing UUIDv7 values."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._millis = -1
        self._counter = 0

    def reset(self) -> None:
        """Forget the last id (a forked child must not continue its parent's counter)."""
        self._lock = threading.Lock()
        self._millis = -1
        self._counter = 0

    def next(self) -> UUID:
        now = time.time_ns() // 1_000_000
        tail = int.from_bytes(os.urandom(4), "big")
        with self._lock:
            if now > self._millis:
                self._millis = now
                self._counter = int.from_bytes(os.urandom(6), "big") >> (48 - _SEED_BITS)
            elif self._counter < _COUNTER_MAX:
                self._counter += 1  # same millisecond, or the clock stepped back
            else:
                self._millis += 1  # counter exhausted: borrow the next millisecond
                self._counter = int.from_bytes(os.urandom(6), "big") >> (48 - _SEED_BITS)
            millis, counter = self._millis, self._counter
        value = (millis & _MILLIS_MASK) << 80 | _VERSION
        value |= (counter >> 30) << 64  # rand_a: the counter's top 12 bits
        value |= _VARIANT | (counter & ((1 << 30) - 1)) << 32 | tail
        return UUID(int=value)


_SEQUENCE = Uuid7Sequence()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_SEQUENCE.reset)


def uuid7() -> UUID:
    """A new UUIDv7, greater than every earlier one of this process."""
    return _SEQUENCE.next()


def uuid7_millis(value: UUID) -> int:
    """The Unix milliseconds a UUIDv7 carries."""
    return value.int >> 80


__all__ = ["Uuid7Sequence", "uuid7", "uuid7_millis"]
