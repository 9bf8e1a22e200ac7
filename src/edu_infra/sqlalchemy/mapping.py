"""Imperative mappings of the domain's attrs classes onto the tables.

Mapping changes the classes (SQLAlchemy instruments their attributes), so it happens only
when asked: `start_mappers()` is explicit and idempotent, never run on import, and
`edu_domain` stays importable and testable without it. `clear_mappers()` is for tests.
"""

from __future__ import annotations

import threading

from sqlalchemy import Column, Table
from sqlalchemy.orm import registry

from edu_domain.errors import ValidationError
from edu_domain.model import Entity
from edu_infra.sqlalchemy.sa_internals import check as check_internals
from edu_infra.sqlalchemy.tables import TABLES

mapper_registry = registry(metadata=TABLES[next(iter(TABLES))].metadata)
_lock = threading.Lock()
_started = False


def start_mappers() -> None:
    """Map every entity class onto its table, once per process (safe to call again)."""
    global _started
    with _lock:
        if _started:
            return
        for cls, table in TABLES.items():
            mapper = mapper_registry.map_imperatively(
                cls,
                table,
                primary_key=[table.c.id],
                version_id_col=table.c.version,
            )
            check_internals(mapper)
        _started = True


def clear_mappers() -> None:
    """Undo `start_mappers` (tests only: it restores the plain attrs classes)."""
    global _started
    with _lock:
        mapper_registry.dispose()
        _started = False


def mappers_started() -> bool:
    return _started


def table_of(cls: type[Entity]) -> Table:
    try:
        return TABLES[cls]
    except KeyError:
        raise ValidationError("entity", f"{cls.__name__} is not a persisted entity") from None


def column_of(cls: type[Entity], field: str) -> Column[object]:
    """The column behind a (validated) field name; names and columns coincide by design."""
    return table_of(cls).c[field]


def tenant_column(cls: type[Entity]) -> Column[object]:
    return column_of(cls, cls.__tenant_field__)


__all__ = ["clear_mappers", "column_of", "mappers_started", "start_mappers", "table_of"]
