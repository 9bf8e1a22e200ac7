"""What the read-through cache invalidates, and how generations become part of a key."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any, TypeAlias
from uuid import UUID

from attrs import frozen

from edu_domain.caching import CacheKey

__all__ = ["Invalidation", "Namespace", "escape", "new_generation", "versioned_key"]

_NO_GENERATION = "0"


@frozen
class Namespace:
    """All cached reads of one namespace of one tenant (invalidated by a generation bump)."""

    tenant: UUID
    namespace: str


Invalidation: TypeAlias = CacheKey | Namespace


def escape(part: str) -> str:
    """A key part that cannot forge the `:` and `@` separators of another key."""
    return part.replace("%", "%25").replace(":", "%3A").replace("@", "%40")


def _generation(value: Any | None) -> str:
    return _NO_GENERATION if value is None else str(value)


def versioned_key(base: str, generations: Sequence[Any | None]) -> str:
    """`base@<g1>.<g2>...`: where a value lives under these generations (see `Cache`)."""
    return base + "@" + ".".join(_generation(g) for g in generations)


def new_generation() -> str:
    """A fresh, never-repeating generation (random, so an expired one cannot come back)."""
    return secrets.token_hex(6)
