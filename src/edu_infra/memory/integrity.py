"""The database constraints, checked in Python: partial uniqueness, references, cascades.

They run against a `View` (committed rows overlaid with one transaction's writes) at each
flush, and again against the latest committed rows at commit, as a database would.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from uuid import UUID

from edu_domain.errors import AlreadyExists, NotFound, ValidationError
from edu_domain.model import ENTITY_TYPES
from edu_domain.model.base import Entity, Reference
from edu_infra.memory.store import InMemoryStore, Key, Row, Writes, tenant_of


class View:
    """Committed rows with a transaction's writes laid over them (read-only, cached per class).

    Build a new one whenever the writes change.
    """

    def __init__(self, store: InMemoryStore, writes: Writes) -> None:
        self._store = store
        self._writes = writes
        self._cache: dict[type[Entity], dict[UUID, Row]] = {}

    def rows(self, cls: type[Entity]) -> Mapping[UUID, Row]:
        rows = self._cache.get(cls)
        if rows is None:
            rows = dict(self._store.rows(cls))
            for (kind, id_), row in self._writes.items():
                if kind is not cls:
                    continue
                if row is None:
                    rows.pop(id_, None)
                else:
                    rows[id_] = row
            self._cache[cls] = rows
        return rows

    def row(self, key: Key) -> Row | None:
        if key in self._writes:
            return self._writes[key]
        return self._store.row(key)


def check_unique(view: View, keys: Iterable[Key]) -> None:
    """AlreadyExists if a live row of `keys` shares a unique key with another live row."""
    by_class: dict[type[Entity], list[UUID]] = defaultdict(list)
    for cls, id_ in keys:
        by_class[cls].append(id_)
    for cls, ids in by_class.items():
        rows = view.rows(cls)
        for unique in cls.__unique__:
            owners: dict[tuple[object, ...], set[UUID]] = defaultdict(set)
            for id_, row in rows.items():
                values = _unique_values(row, unique.fields)
                if values is not None:
                    owners[values].add(id_)
            for id_ in ids:
                mine = rows.get(id_)
                values = None if mine is None else _unique_values(mine, unique.fields)
                if values is not None and len(owners[values]) > 1:
                    raise AlreadyExists(cls.__name__, unique.reported_as)


def _unique_values(row: Row, fields: tuple[str, ...]) -> tuple[object, ...] | None:
    """The key of a live row; None for deleted rows and null parts (SQL nulls are distinct)."""
    if row["deleted_at"] is not None:
        return None
    values = tuple(row[name] for name in fields)
    return None if any(value is None for value in values) else values


def check_references(view: View, keys: Iterable[Key]) -> None:
    """NotFound if a row of `keys` references a row missing from its organization."""
    for cls, id_ in keys:
        row = view.row((cls, id_))
        if row is None:
            continue
        for ref in cls.__references__:
            target_id = row[ref.field]
            target = view.row((ref.target, target_id))
            if target is None or tenant_of(ref.target, target) != tenant_of(cls, row):
                raise NotFound(ref.target.__name__, target_id)


def _referrers(target: type[Entity]) -> list[tuple[type[Entity], Reference]]:
    return [
        (cls, ref) for cls in ENTITY_TYPES for ref in cls.__references__ if ref.target is target
    ]


def cascade(view: View, keys: Iterable[Key]) -> list[Key]:
    """Every row a hard delete of `keys` removes (children by `on_delete="cascade"`).

    ValidationError naming the referencing field when a `restrict` reference remains.
    """
    doomed: dict[Key, None] = dict.fromkeys(keys)
    restricted: list[tuple[Key, Reference]] = []
    pending = list(doomed)
    while pending:
        target_cls, target_id = pending.pop()
        for cls, ref in _referrers(target_cls):
            for id_, row in view.rows(cls).items():
                if row[ref.field] != target_id or (cls, id_) in doomed:
                    continue
                if ref.on_delete == "cascade":
                    doomed[(cls, id_)] = None
                    pending.append((cls, id_))
                else:
                    restricted.append(((cls, id_), ref))
    for child, ref in restricted:
        if child not in doomed:
            raise ValidationError(ref.field, f"still referenced by {child[0].__name__}")
    return list(doomed)
