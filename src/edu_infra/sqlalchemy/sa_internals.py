"""Every private SQLAlchemy internal the adapter relies on, in one place, with a self-check.

The driver path builds instrumented entities and opens transactions on SQLAlchemy's asyncpg
adapter without going through the ORM or `Connection.begin()`; doing that needs a few
non-public names. They are reached only through these functions, and `check()` (run once
when the mappers start) fails loudly, naming what moved, if a SQLAlchemy release changes
them. The dependency is pinned below the next minor version (`pyproject.toml`).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any
from uuid import uuid4

from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.orm import Mapper
from sqlalchemy.orm.state import InstanceState
from sqlalchemy.pool import Pool
from sqlalchemy.pool.base import _ConnectionRecord

# ------------------------------------------------------------------ asyncpg adapter


def open_transaction(adapter: Any) -> Any:
    """The adapter's open transaction (None: none), whoever began it."""
    return adapter._transaction


def hand_transaction(adapter: Any, transaction: Any) -> None:
    """Make the adapter treat `transaction` (or None) as its open one: it will commit or
    roll back through it and not send a BEGIN of its own."""
    adapter._transaction = transaction


async def begin_at_adapter_level(adapter: Any) -> Any:
    """BEGIN as the adapter would (its isolation level, read-only, deferrable flags)."""
    await adapter._start_transaction()
    return adapter._transaction


# ------------------------------------------------------------------ pool


def is_live(pool: Pool, record: Any) -> bool:
    """True when checking out the idle `record` needs no I/O: it has a connection that is
    not due for recycling nor invalidated (what `_ConnectionRecord.get_connection` checks)."""
    started: float = record.starttime
    if record.dbapi_connection is None:
        return False
    recycle = pool._recycle
    return bool(
        (recycle < 0 or time.time() - started <= recycle)
        and pool._invalidate_time <= started
        and record._soft_invalidate_time <= started
    )


# ------------------------------------------------------------------ ORM instance state


def state_constructor(mapper: Mapper[Any]) -> Callable[[Any, Any], InstanceState[Any]]:
    """What `ClassManager.new_instance` uses to make an instance's state."""
    return mapper.class_manager._state_constructor


def identity_class(mapper: Mapper[Any]) -> type[Any]:
    return mapper._identity_class


def mark_committed(state: InstanceState[Any], values: Mapping[str, Any]) -> None:
    """Treat `values` as the committed ones: no pending change (what a load or flush does)."""
    state._commit_all(values)  # type: ignore[arg-type]


class _Pinned:
    """Objects pinned by `Pins`: SQLAlchemy calls `add(state)` on an instance's first change."""

    def __init__(self) -> None:
        self.objects: dict[int, Any] = {}

    def add(self, state: InstanceState[Any]) -> None:
        obj = state.obj()
        if obj is not None:
            self.objects[id(obj)] = obj

    def discard(self, state: InstanceState[Any]) -> None:
        """Committed again: stays pinned until `Pins.clear` (the unit of work's commit)."""

    def __bool__(self) -> bool:
        return bool(self.objects)


class Pins:
    """Keeps detached instances weakly until they change, then strongly (what a session's
    identity map does for its own): SQLAlchemy reports an instance's first change to the
    map in its state's `_instance_dict`, and this stands in for that map."""

    def __init__(self) -> None:
        self._modified = _Pinned()
        self._ref = weakref.ref(self)

    def watch(self, state: InstanceState[Any]) -> None:
        state._instance_dict = self._ref  # type: ignore[assignment]

    def _fast_discard(self, state: InstanceState[Any]) -> None:
        """Called when an unchanged watched instance is garbage collected: nothing to do."""

    def pin(self, obj: Any) -> None:
        """Hold `obj` strongly until `clear` (an event was recorded on it)."""
        self._modified.objects[id(obj)] = obj

    def clear(self) -> None:
        self._modified.objects.clear()


# ------------------------------------------------------------------ self-check


def check(mapper: Mapper[Any]) -> None:
    """Fail at start-up, naming the internal, if this SQLAlchemy moved any of them."""
    missing = [
        name
        for owner, name in (
            (AsyncAdapt_asyncpg_connection, "_start_transaction"),
            (InstanceState, "_commit_all"),
            (InstanceState, "_instance_dict"),
            (mapper.class_manager, "_state_constructor"),
            (mapper, "_identity_class"),
            (_ConnectionRecord, "_soft_invalidate_time"),
            (_ConnectionRecord, "starttime"),
        )
        if not hasattr(owner, name)
    ]
    if "_transaction" not in getattr(AsyncAdapt_asyncpg_connection, "__slots__", ("_transaction",)):
        missing.append("AsyncAdapt_asyncpg_connection._transaction")
    if "_invalidate_time" not in getattr(Pool, "__annotations__", {}):
        missing.append("Pool._invalidate_time")
    if missing:
        raise RuntimeError(
            "this SQLAlchemy release changed internals edu-core relies on: " + ", ".join(missing)
        )
    probe = uuid4()
    if mapper.identity_key_from_primary_key((probe,)) != (identity_class(mapper), (probe,), None):
        raise RuntimeError("SQLAlchemy's identity key has changed form; update sa_internals")


__all__ = [
    "Pins",
    "begin_at_adapter_level",
    "check",
    "hand_transaction",
    "identity_class",
    "is_live",
    "mark_committed",
    "open_transaction",
    "state_constructor",
]
