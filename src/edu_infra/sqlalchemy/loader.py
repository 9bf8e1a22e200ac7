"""Rows -> instrumented entities, as the ORM loads them, without the ORM (the driver path).

A row of asyncpg becomes an entity with its identity key and committed state, so the unit of
work can attach it to its session later (no SQL) and flush changes to it as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import class_mapper
from sqlalchemy.orm.base import instance_state

from edu_domain.model import Entity
from edu_infra.sqlalchemy.mapping import table_of
from edu_infra.sqlalchemy.results import result_processor
from edu_infra.sqlalchemy.sa_internals import identity_class, mark_committed, state_constructor
from edu_infra.sqlalchemy.types import EnumText, UtcDateTime


class EntityLoader:
    """Rows of one table -> instrumented entities, as the ORM loads them (no `__init__`)."""

    def __init__(self, cls: type[Entity], dialect: Dialect) -> None:
        table = table_of(cls)
        self.cls = cls
        self._mapper = class_mapper(cls)
        self._manager = self._mapper.class_manager
        self.names = tuple(str(c.key) for c in table.columns)
        self.id_index = self.names.index("id")
        self._on_load = self._manager.dispatch.load
        self._new = cls.__new__
        self._state = state_constructor(self._mapper)
        self._identity_class = identity_class(self._mapper)
        self._fill = _filler(table, dialect)

    def identity(self, id: Any) -> Any:
        """The session's identity key of the row `id` (the mapper's own form, built directly)."""
        return (self._identity_class, (id,), None)

    def build(self, record: Sequence[Any], identity: Any = None) -> Entity:
        # `ClassManager.new_instance` without its setattr (attrs' on_setattr hooks)
        obj: Entity = self._new(self.cls)
        state = self._state(obj, self._manager)
        self._fill(obj.__dict__, state, record)
        state.key = identity if identity is not None else self.identity(record[self.id_index])
        if self._on_load:  # e.g. mutable JSON columns start tracking their parent
            self._on_load(state, None)
        return obj

    def refresh(self, obj: Entity, record: Sequence[Any]) -> None:
        """Overwrite a loaded entity with a fresh row (a locking read), as populate_existing."""
        fresh = self.build(record)
        state = instance_state(obj)
        values = {k: v for k, v in fresh.__dict__.items() if k != "_sa_instance_state"}
        obj.__dict__.update(values)
        mark_committed(state, obj.__dict__)
        if self._on_load:
            self._on_load(state, None)


def _filler(table: Table, dialect: Dialect) -> Callable[[dict[str, Any], Any, Sequence[Any]], None]:
    """`fill(values, state, record)`: an instance dict from a row, as one generated function
    per table (no loop, no call for a value already in its Python form). A `timestamptz`
    comes from asyncpg as a UTC-aware datetime whatever the session's TimeZone (binary
    protocol), so it is only checked, and converted when not (e.g. `infinity`); an enum is
    one dict lookup; other types with result processing call it."""
    names = [str(c.key) for c in table.columns]
    if len(set(names)) != len(names):
        raise RuntimeError(f"{table.name}: column keys must be distinct")
    scope: dict[str, Any] = {"UTC": UTC, "datetime": datetime}
    lines = ["def fill(values, state, record):", "    values['_sa_instance_state'] = state"]
    lines.append(f"    ({', '.join(f'c_{i}' for i in range(len(names)))},) = record")
    for i, (name, column) in enumerate(zip(names, table.columns, strict=True)):
        process = result_processor(column.type, dialect)
        value = f"c_{i}"
        if process is not None:
            scope[f"p_{i}"] = process
            if isinstance(column.type, UtcDateTime):
                value = (
                    f"c_{i} if c_{i} is None or (c_{i}.__class__ is datetime and "
                    f"c_{i}.tzinfo is UTC) else p_{i}(c_{i})"
                )
            elif isinstance(column.type, EnumText):
                scope[f"m_{i}"] = dict(column.type.enum._value2member_map_)
                value = f"m_{i}[c_{i}] if c_{i} in m_{i} else p_{i}(c_{i})"
            else:
                value = f"p_{i}(c_{i})"
        lines.append(f"    values[{name!r}] = {value}")
    exec("\n".join(lines), scope)  # noqa: S102  (generated from the table's own columns)
    fill: Callable[[dict[str, Any], Any, Sequence[Any]], None] = scope["fill"]
    return fill


__all__ = ["EntityLoader"]
