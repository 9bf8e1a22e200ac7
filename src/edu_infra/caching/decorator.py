"""`cache_result`: the old API's decorator, caching an async function per tenant and arguments."""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Awaitable, Callable, Collection
from datetime import date, datetime
from enum import Enum
from typing import Any, ParamSpec, Protocol, TypeVar, get_type_hints
from uuid import UUID

from edu_domain.caching import CacheKey

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

__all__ = ["ExpiringReadCache", "cache_result"]


class ExpiringReadCache(Protocol):
    """What `cache_result` needs: a read-through `fetch` with a per-call expiry."""

    async def fetch(
        self,
        key: CacheKey,
        load: Callable[[], Awaitable[T]],
        type_: Any,
        *,
        expire: float | None = None,
    ) -> T: ...


def _key_value(name: str, value: Any) -> Any:
    """A type-tagged, JSON-able form of an argument: `"1"` and `1`, `None` and `"None"`,
    `["a,b"]` and `["a", "b"]` must never share a key."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, Enum):
        return ["enum", type(value).__name__, _key_value(name, value.value)]
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return ["num", repr(value)]
    if isinstance(value, UUID):
        return ["uuid", str(value)]
    if isinstance(value, datetime | date):
        return [type(value).__name__, value.isoformat()]
    if isinstance(value, tuple | list):
        return ["seq", [_key_value(name, v) for v in value]]
    if isinstance(value, frozenset | set):
        return ["set", sorted((_key_value(name, v) for v in value), key=json.dumps)]
    raise TypeError(
        f"argument {name!r} ({type(value).__name__}) cannot be part of a cache key; "
        "list it in ignore=(...) if it does not change the result"
    )


def _key_part(name: str, value: Any) -> str:
    return f"{name}=" + json.dumps(_key_value(name, value), separators=(",", ":"))


def cache_result(
    reads: ExpiringReadCache,
    *,
    prefix: str,
    expire: float | None = None,
    tenant: str = "tenant",
    ignore: Collection[str] = (),
    type_: Any = None,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Cache an async function's result per tenant and arguments (the old API's decorator).

    The key is `{tenant}:<prefix>:<module.qualname>:<arg=value>...` from the bound
    arguments: the `tenant` argument (a UUID) scopes it, `ignore` names arguments that do
    not change the result (a session, a unit of work). Other arguments must be plain values
    (str, numbers, UUIDs, enums, dates, and tuples/lists/sets of them). The result is
    decoded as the return annotation, or `type_`. `reads.invalidate_namespace(t, prefix)`
    drops every result of the prefix for a tenant.
    """

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        signature = inspect.signature(fn)
        if tenant not in signature.parameters:
            raise TypeError(f"{fn.__qualname__} has no {tenant!r} argument to scope the cache")
        name = f"{fn.__module__}.{fn.__qualname__}"

        @functools.cache
        def result_type() -> Any:
            return type_ if type_ is not None else get_type_hints(fn).get("return", Any)

        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            owner = bound.arguments[tenant]
            owner = owner if isinstance(owner, UUID) else UUID(str(owner))
            parts = tuple(
                _key_part(arg, value)
                for arg, value in bound.arguments.items()
                if arg != tenant and arg not in ignore
            )
            key = CacheKey(prefix, owner, (name, *parts))
            return await reads.fetch(key, lambda: fn(*args, **kwargs), result_type(), expire=expire)

        return wrapper

    return decorate
