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
    "StorageKeys",
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


class StorageKeys:
    """Where a cached read's generations and values live (the key layout of the module doc
    of `read_through`). The keys of recent reads are kept (`key_memo` of them): building
    them costs a hit several UUID-to-text conversions and escapes."""

    key_memo = 4096

    def __init__(self) -> None:
        self._built: dict[CacheKey, tuple[list[str], str]] = {}

    @staticmethod
    def tenant_tag(tenant: UUID) -> str:
        """The Redis Cluster hash tag of a tenant: all its keys hash to one slot."""
        return "{" + str(tenant) + "}"

    def namespace_generation_key(self, tenant: UUID, namespace: str) -> str:
        return f"{self.tenant_tag(tenant)}:gen:{escape(namespace)}"

    def item_generation_key(self, key: CacheKey) -> str:
        return self.layout(key)[0][1]

    def generation_keys(self, key: CacheKey) -> list[str]:
        """The (namespace, item) generation keys of a cached read."""
        return self.layout(key)[0]

    def storage_key(self, key: CacheKey, generations: Sequence[Any | None]) -> str:
        """Where `key`'s value lives under the given (epoch, namespace, item) generations."""
        return versioned_key(self.layout(key)[1], [str(g) for g in generations])

    def storage_base(self, key: CacheKey) -> str:
        return self.layout(key)[1]

    def layout(self, key: CacheKey) -> tuple[list[str], str]:
        """(generation keys, storage base) of `key`: the one place the layout is built."""
        parts = ":".join(escape(p) for p in key.parts)
        tag, namespace = self.tenant_tag(key.tenant), escape(key.namespace)
        generations = [f"{tag}:gen:{namespace}", f"{tag}:igen:{namespace}:{parts}"]
        return generations, f"{tag}:{namespace}:{parts}" if parts else f"{tag}:{namespace}"

    def read_keys(self, key: CacheKey) -> tuple[list[str], str]:
        """`layout(key)`, remembered; callers must not change the list."""
        found = self._built.get(key)
        if found is None:
            if len(self._built) >= self.key_memo:
                self._built.clear()
            found = self._built[key] = self.layout(key)
        return found
