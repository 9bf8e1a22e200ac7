"""The domain error for a failed write, naming entity and field where the driver won't.

Drivers say less than the port promises: SQLite never names a failed foreign key,
PostgreSQL hides key values from roles under row-level security, and both check unique
indexes in an order of their own. Where the driver's error is not enough, a few queries on
the rolled-back session find what the memory adapter would report. Each asks the session
after the failed transaction was rolled back and resets the unit of work afterwards.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from edu_domain.errors import (
    AlreadyExists,
    ConcurrencyConflict,
    DomainError,
    NotFound,
    ValidationError,
)
from edu_domain.model import ENTITY_TYPES, Entity, Organization
from edu_infra.sqlalchemy.changes import tenant_of
from edu_infra.sqlalchemy.errors import DbFailure, to_domain_error
from edu_infra.sqlalchemy.mapping import table_of

Session = Callable[[], AsyncSession]
Reset = Callable[[], Awaitable[None]]


async def explain(
    failure: DbFailure,
    subject: Entity | None,
    pending: list[Entity],
    deleting: list[Entity],
    session: Session,
    reset: Reset,
) -> DomainError:
    """The port's error for `failure` of a write of `subject` (with `pending`, `deleting`)."""
    if failure.kind == "stale":
        return await _conflict(failure, [*pending, *deleting], subject, session, reset)
    if failure.kind == "foreign_key" and not failure.key_values:
        # SQLite never names the key; PostgreSQL hides it from roles under RLS
        missing = await _missing_reference(pending, session, reset)
        if missing is not None:
            return missing
    if failure.kind in ("foreign_key", "restrict") and failure.constraint is None:
        if deleting:
            restricted = _restricting_reference(type(deleting[-1]))
            if restricted is not None:
                return ValidationError(restricted[1], f"still referenced by {restricted[0]}")
        missing = await _missing_reference(pending, session, reset)
        if missing is not None:
            return missing
    error = to_domain_error(failure, type(subject) if subject is not None else None)
    if isinstance(error, AlreadyExists) and error.field != "id":
        owner = next((c for c in ENTITY_TYPES if c.__name__ == error.entity), None)
        if owner is not None:
            first = await _first_violated_key(owner, pending, session, reset)
            if first is not None:
                return AlreadyExists(owner.__name__, first)
    return error


async def _first_violated_key(
    cls: type[Entity], pending: list[Entity], session: Session, reset: Reset
) -> str | None:
    """The first of `cls.__unique__` the written rows violate, as the memory adapter reports.

    Databases check unique indexes row by row in an order of their own (SQLite: newest
    index first); the port reports the first key in declaration order.
    """
    live = list({id(e): e for e in pending if type(e) is cls and e.deleted_at is None}.values())
    if not live:
        return None
    table = table_of(cls)
    ids = [e.id for e in live]
    try:
        for key in cls.__unique__:
            values = [tuple(getattr(e, f) for f in key.fields) for e in live]
            if len(set(values)) < len(values):
                return key.reported_as
            columns = [table.c[f] for f in key.fields]
            stmt = (
                select(func.count())
                .select_from(table)
                .where(
                    table.c.deleted_at.is_(None),
                    tuple_(*columns).in_(values),
                    table.c.id.not_in(ids),
                )
            )
            if await session().scalar(stmt):
                return key.reported_as
        return None
    finally:
        await reset()


async def _conflict(
    failure: DbFailure,
    candidates: list[Entity],
    subject: Entity | None,
    session: Session,
    reset: Reset,
) -> ConcurrencyConflict:
    """Name the row that changed: the ORM's flush says only which table. The candidates
    hold their committed versions again (the failed flush was undone), so the one whose
    row has another version now, or none, is it."""
    of_table = [c for c in candidates if table_of(type(c)).name == failure.table]
    choices = of_table or candidates or ([subject] if subject is not None else [])
    if not choices:
        return ConcurrencyConflict("entity", None)
    if len(of_table) > 1:
        table = table_of(type(of_table[0]))
        try:
            stmt = select(table.c.id, table.c.version).where(
                table.c.id.in_([c.id for c in of_table])
            )
            stored = dict((await session().execute(stmt)).all())
        finally:
            await reset()
        for candidate in of_table:
            if stored.get(candidate.id) != candidate.version:
                return ConcurrencyConflict(type(candidate).__name__, candidate.id)
    return ConcurrencyConflict(type(choices[-1]).__name__, choices[-1].id)


async def _missing_reference(
    pending: list[Entity], session: Session, reset: Reset
) -> NotFound | None:
    """SQLite does not name the failed foreign key: look for the missing target."""
    try:
        for obj in reversed(pending):
            for target, value in _references_of(obj):
                table = table_of(target)
                stmt = select(func.count()).select_from(table).where(table.c.id == value)
                if "organization_id" in table.c:
                    stmt = stmt.where(table.c.organization_id == tenant_of(obj))
                if not await session().scalar(stmt):
                    return NotFound(target.__name__, value)
        return None
    finally:
        await reset()


async def missing_row_reference(
    session: AsyncSession, cls: type[Entity], rows: list[dict[str, Any]]
) -> NotFound | None:
    """The first missing target of imported `rows` (SQLite names no failed foreign key; its
    transaction survives a failed statement, so the import asks at once)."""
    own = [("organization_id", Organization)] if cls.__tenant_field__ == "organization_id" else []
    for field, target in [*own, *((r.field, r.target) for r in cls.__references__)]:
        table = table_of(target)
        for row in rows:
            stmt = select(func.count()).select_from(table).where(table.c.id == row[field])
            if "organization_id" in table.c:
                stmt = stmt.where(table.c.organization_id == row[cls.__tenant_field__])
            if not await session.scalar(stmt):
                return NotFound(target.__name__, row[field])
    return None


def _references_of(obj: Entity) -> list[tuple[type[Entity], UUID]]:
    refs: list[tuple[type[Entity], UUID]] = []
    if type(obj).__tenant_field__ == "organization_id":
        refs.append((Organization, tenant_of(obj)))
    refs.extend((ref.target, getattr(obj, ref.field)) for ref in type(obj).__references__)
    return refs


def _restricting_reference(target: type[Entity]) -> tuple[str, str] | None:
    for cls in ENTITY_TYPES:
        for ref in cls.__references__:
            if ref.target is target and ref.on_delete == "restrict":
                return cls.__name__, ref.field
    return None


__all__ = ["explain", "missing_row_reference"]
