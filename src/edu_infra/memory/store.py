"""The committed state of the in-memory adapter: plain rows, shareable by many units of work.

Rows are dicts of attrs field values. Entities are never stored: a unit of work copies an
entity into a row when it writes and builds a fresh object from a row when it reads, so a
caller mutating an object it holds can never change committed state behind the UoW's back.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar
from uuid import UUID

import attrs

from edu_domain.model import ENTITY_TYPES
from edu_domain.model.base import Entity
from edu_infra.memory.outbox import OutboxRow

E = TypeVar("E", bound=Entity)
Row = Mapping[str, Any]
Key = tuple[type[Entity], UUID]
#: Pending writes of one transaction: a new row, or None for a hard delete.
Writes = dict[Key, Row | None]


def key_of(entity: Entity) -> Key:
    return (type(entity), entity.id)


def _copy_value(value: Any) -> Any:
    return copy.deepcopy(value) if isinstance(value, (dict, list)) else value


def snapshot(entity: Entity) -> Row:
    """The entity's field values as a row, mutable values copied."""
    return {a.name: _copy_value(getattr(entity, a.name)) for a in attrs.fields(type(entity))}


def materialize(cls: type[E], row: Row) -> E:
    """A new object holding a copy of `row`.

    Built through `__init__` (not `__new__` + `__dict__`): once the SQL adapter has mapped
    the classes, only an initialised instance carries the ORM state its attributes need, and
    both adapters must work in one process (the differential tests run them side by side).
    """
    return cls(**{name: _copy_value(value) for name, value in row.items()})


def tenant_of(cls: type[Entity], row: Row) -> UUID:
    value: UUID = row[cls.__tenant_field__]
    return value


class InMemoryStore:
    """Committed rows by entity class and id. Share one store between factories to share data.

    Only `apply` changes it, synchronously, so a commit is atomic under asyncio. `outbox`
    holds the committed events not yet delivered (`edu_infra.memory.outbox`).
    """

    def __init__(self) -> None:
        self._rows: dict[type[Entity], dict[UUID, Row]] = {cls: {} for cls in ENTITY_TYPES}
        self.outbox: dict[UUID, OutboxRow] = {}

    def rows(self, cls: type[Entity]) -> Mapping[UUID, Row]:
        return self._rows[cls]

    def row(self, key: Key) -> Row | None:
        return self._rows[key[0]].get(key[1])

    def apply(self, writes: Writes, outbox: Iterable[OutboxRow] = ()) -> None:
        for (cls, id_), row in writes.items():
            if row is None:
                self._rows[cls].pop(id_, None)
            else:
                self._rows[cls][id_] = row
        for entry in outbox:
            self.outbox[entry.key] = entry

    def clear(self) -> None:
        """Forget every row (between tests that share a store)."""
        for rows in self._rows.values():
            rows.clear()
        self.outbox.clear()

    def __len__(self) -> int:
        return sum(len(rows) for rows in self._rows.values())

    def __iter__(self) -> Iterator[Key]:
        return ((cls, id_) for cls, rows in self._rows.items() for id_ in rows)
