"""The small interface between a SQL unit of work and the rows it reads and writes.

Two implementations, picked by the factory from the dialect: `pg_rows.PgRows` (PostgreSQL:
statements compiled once per shape and sent on the unit of work's own asyncpg connection)
and `orm_rows.OrmRows` (SQLite: the ORM session). `uow.SqlUnitOfWork` talks only to this
interface and never asks which path it is on. A row path is handed what it needs when it is
made (the identity map, the change log, the tenant), never the unit of work itself.

The unit of work checks arguments, wraps each call in its error handling (`_read`,
`_write`), tracks what is handed out and dispatches events; a row path moves rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar
from uuid import UUID

from sqlalchemy.engine import Connection

from edu_domain.errors import ValidationError
from edu_domain.model import Entity
from edu_domain.query import BoundQuery, Filter, Group
from edu_infra.outbox.store import OutboxEntry
from edu_infra.sqlalchemy.errors import DatabaseError, is_driver_error

log = logging.getLogger("edu_infra")
T = TypeVar("T")

#: (entity class, its filter): a total a grouped read may carry in the same statement
Other = tuple[type[Entity], Filter | None]


class RowPath(Protocol):
    """How one unit of work moves rows. Transaction methods first, then the rows."""

    def sync_bind(self) -> Connection | None:
        """The connection the session must use (None: the session checks out its own)."""

    def taint(self) -> None:
        """Raw SQL may run on this connection: discard it at close instead of pooling it."""

    async def begin(self) -> None:
        """Make sure a transaction is open (a dead pooled connection is replaced here)."""

    async def commit(self) -> None:
        """Commit what the session did not (called after the session's own commit)."""

    async def rollback(self) -> None: ...

    async def invalidate(self) -> None:
        """Never hand this connection back to the pool."""

    async def close(self) -> None: ...

    async def fail_over(self) -> bool:
        """The connection was lost: True if reading again elsewhere is safe (a read-only unit
        of work on a replica moves to the primary), False otherwise."""

    async def get(
        self, cls: type[Entity], key: UUID, *, include_deleted: bool, lock: bool
    ) -> Entity | None:
        """The row's entity (the held one when there is one; `lock` re-reads it FOR UPDATE).
        The caller checks visibility again: identity-map hits skip the SQL filters."""

    async def page(self, bound: BoundQuery, *, include_deleted: bool) -> list[Entity]:
        """One more row than the page's limit, if there is one (the caller cuts)."""

    async def count(self, bound: BoundQuery, *, include_deleted: bool) -> int: ...

    async def groups(
        self,
        cls: type[Entity],
        by: Sequence[str],
        flt: Filter | None,
        measures: Sequence[Filter],
        others: Sequence[Other],
    ) -> Sequence[Sequence[Any]]:
        """Rows of (*key, count, *measures, *totals of `others`)."""

    async def insert(self, entity: Entity) -> None:
        """One checked, stamped new entity: written now, persistent after."""

    async def copy(self, batch: list[Entity]) -> None:
        """Checked, stamped new entities: written now in as few round trips as the path can."""

    async def insert_rows(self, cls: type[Entity], rows: list[dict[str, Any]]) -> None:
        """Checked, stamped plain rows of `cls` (an import): written now, never tracked."""

    async def refresh_statistics(self, inserted: Mapping[str, int]) -> None:
        """After a commit that inserted many rows (table -> count): ANALYZE where the inserts
        left the planner's statistics stale (`statistics.py`; PostgreSQL only). Never raises."""

    async def update(self) -> None:
        """Write every pending change (a flush)."""

    async def enqueue(self, entries: Sequence[OutboxEntry]) -> None:
        """Write a commit's outbox rows in its transaction (before the commit)."""

    async def stream(self, bound: BoundQuery, batch_size: int) -> Any:
        """An async result of entities, fetched `batch_size` rows at a time."""


def shape_groups(
    rows: Sequence[Sequence[Any]], width: int, measures: list[str], totals: list[str]
) -> tuple[list[Group], dict[str, int] | None]:
    """Grouped rows -> the port's groups (empty ones dropped) and totals (None: no row, so
    the statement could not carry them)."""
    groups = [
        Group(
            key=tuple(row[:width]),
            count=int(row[width]),
            measures={name: int(row[width + 1 + i]) for i, name in enumerate(measures)},
        )
        for row in rows
    ]
    first_total = width + 1 + len(measures)
    counted = (
        {name: int(rows[0][first_total + j] or 0) for j, name in enumerate(totals)}
        if rows
        else None
    )
    return [g for g in groups if g.count > 0], counted


async def next_or_none(result: Any) -> Any:
    """The next item of an async result (a stream), or None at its end."""
    try:
        return await result.__anext__()
    except StopAsyncIteration:
        return None


def bind_values(build: Callable[[], T], field: str) -> T:
    """Values the column types cannot convert are bad input, named by `field`."""
    try:
        return build()
    except (TypeError, ValueError, OverflowError) as error:
        what = "sent to the database" if field == "query" else "stored"
        raise ValidationError(field, f"a value cannot be {what}: {error}") from None


def compiled(build: Callable[[], T]) -> T:
    """Build a statement; a SQLAlchemy error here is a bug, still reported as a DomainError."""
    try:
        return build()
    except Exception as error:
        if not is_driver_error(error):
            raise
        log.exception("building a statement failed")
        raise DatabaseError(f"could not build the query: {error}") from None


__all__ = ["Other", "RowPath", "bind_values", "compiled", "next_or_none", "shape_groups"]
