"""The database constraints, checked in Python: partial uniqueness, references, cascades.

They run against a `View` (committed rows overlaid with one transaction's writes) at each
flush, and again against the latest committed rows at commit, as a database would.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from uuid import UUID

from edu_domain.errors import AlreadyExists, NotFound, ValidationError
from edu_domain.model import ENTITY_TYPES, Organization
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


def references(cls: type[Entity]) -> tuple[Reference, ...]:
    """The class's references, led by the implicit one of every tenant row to its organization.

    The SQL schema holds that one as a cascading foreign key, so the memory adapter must too.
    """
    if cls.__tenant_field__ != "organization_id":
        return cls.__references__
    own = Reference(field="organization_id", target=Organization, on_delete="cascade")
    return (own, *cls.__references__)


def check_references(view: View, keys: Iterable[Key]) -> None:
    """NotFound if a row of `keys` references a row missing from its organization."""
    for cls, id_ in keys:
        row = view.row((cls, id_))
        if row is None:
            continue
        for ref in references(cls):
            target_id = row[ref.field]
            target = view.row((ref.target, target_id))
            if target is None or tenant_of(ref.target, target) != tenant_of(cls, row):
                raise NotFound(ref.target.__name__, target_id)


def cascade(view: View, keys: Iterable[Key]) -> list[Key]:
    """Every row a hard delete of `keys` removes (children by `on_delete="cascade"`).

    ValidationError naming the referencing field when a `restrict` reference remains.
    """
    children = _Children(view)
    doomed: dict[Key, None] = dict.fromkeys(keys)
    restricted: list[tuple[Key, Reference]] = []
    pending = list(doomed)
    while pending:
        target_cls, target_id = pending.pop()
        for cls, ref in _referrers(target_cls):
            for child in children.of(cls, ref, target_id):
                if child in doomed:
                    continue
                if ref.on_delete == "cascade":
                    doomed[child] = None
                    pending.append(child)
                else:
                    restricted.append((child, ref))
    for child, ref in restricted:
        if child not in doomed:
            raise ValidationError(ref.field, f"still referenced by {child[0].__name__}")
    return list(doomed)


def _referrers(target: type[Entity]) -> list[tuple[type[Entity], Reference]]:
    return [(cls, ref) for cls in ENTITY_TYPES for ref in references(cls) if ref.target is target]


class _Children:
    """Rows by the id they reference, indexed on first use (cascades stay linear)."""

    def __init__(self, view: View) -> None:
        self._view = view
        self._index: dict[tuple[type[Entity], str], dict[UUID, list[Key]]] = {}

    def of(self, cls: type[Entity], ref: Reference, target_id: UUID) -> list[Key]:
        index = self._index.get((cls, ref.field))
        if index is None:
            index = defaultdict(list)
            for id_, row in self._view.rows(cls).items():
                index[row[ref.field]].append((cls, id_))
            self._index[(cls, ref.field)] = index
        return index.get(target_id, [])
