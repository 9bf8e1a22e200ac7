"""Rows -> instrumented entities, as the ORM loads them, without the ORM (the driver path).

A row of asyncpg becomes an entity with its identity key and committed state, so the unit of
work can attach it to its session later (no SQL) and flush changes to it as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.orm import class_mapper
from sqlalchemy.orm.base import instance_state

from edu_domain.model import Entity
from edu_infra.sqlalchemy.mapping import table_of
from edu_infra.sqlalchemy.results import result_processor
from edu_infra.sqlalchemy.sa_internals import identity_class, mark_committed, state_constructor


class EntityLoader:
    """Rows of one table -> instrumented entities, as the ORM loads them (no `__init__`)."""

    def __init__(self, cls: type[Entity], dialect: Dialect) -> None:
        table = table_of(cls)
        self.cls = cls
        self._mapper = class_mapper(cls)
        self._manager = self._mapper.class_manager
        self.names = tuple(str(c.key) for c in table.columns)
        self.id_index = self.names.index("id")
        self._converted = tuple(
            (i, name, process)
            for i, (name, column) in enumerate(zip(self.names, table.columns, strict=True))
            if (process := result_processor(column.type, dialect)) is not None
        )
        self._on_load = self._manager.dispatch.load
        self._new = cls.__new__
        self._state = state_constructor(self._mapper)
        self._identity_class = identity_class(self._mapper)

    def identity(self, id: Any) -> Any:
        """The session's identity key of the row `id` (the mapper's own form, built directly)."""
        return (self._identity_class, (id,), None)

    def build(self, record: Sequence[Any], identity: Any = None) -> Entity:
        # `ClassManager.new_instance` without its setattr (attrs' on_setattr hooks)
        obj: Entity = self._new(self.cls)
        values = obj.__dict__
        values["_sa_instance_state"] = self._state(obj, self._manager)
        values.update(zip(self.names, record, strict=True))
        for i, name, process in self._converted:
            values[name] = process(record[i])
        state = instance_state(obj)
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


__all__ = ["EntityLoader"]
