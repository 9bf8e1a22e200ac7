"""What the read-through cache invalidates, and how generations become part of a key."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any, TypeAlias
from uuid import UUID

from attrs import frozen

from edu_domain.caching import CacheKey

__all__ = [
    "Invalidation",
    "Namespace",
    "escape",
    "new_generation",
    "usable_generations",
    "versioned_key",
]


@frozen
class Namespace:
    """All cached reads of one namespace of one tenant (invalidated by a generation bump)."""

    tenant: UUID
    namespace: str


Invalidation: TypeAlias = CacheKey | Namespace


def escape(part: str) -> str:
    """A key part that cannot forge the `:` and `@` separators of another key."""
    return part.replace("%", "%25").replace(":", "%3A").replace("@", "%40")


def usable_generations(generations: Sequence[Any | None]) -> bool:
    """Only strings name a generation: anything else (absent, corrupt) selects no key."""
    return all(isinstance(g, str) for g in generations)


def versioned_key(base: str, generations: Sequence[str]) -> str:
    """`base@<g1>.<g2>...`: where a value lives under these generations (see `Cache`)."""
    return base + "@" + ".".join(generations)


def new_generation() -> str:
    """A fresh generation, never one used before (random: 64 bits).

    Every generation is drawn this way, including the first one of a key (see
    `Cache.get_versioned`): a generation that was deleted (FLUSHDB, `delete_pattern`), evicted
    or expired comes back as a new value, never as a fixed "0" that an old value stored by a
    slow reader could still be filed under.
    """
    return secrets.token_hex(8)
