"""A unit of work's row path with read replicas in mind (`RoutedRows`).

A read-only unit of work's writes are refused before any SQL (`ReadOnlyError`). A read-write
unit of work runs on the primary; after a commit that wrote, it reads the commit's position
(`pg_current_wal_insert_lsn()`, which the application role may call) as its consistency
token and records it in the call chain (`edu_infra.consistency`). Where a read-only one
reads is `routing.ReadRoute`'s to decide.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from sqlalchemy.engine import Connection

from edu_domain.errors import ReadOnlyError
from edu_domain.model import Entity
from edu_domain.query import BoundQuery, Filter
from edu_infra import consistency
from edu_infra.consistency import ConsistencyToken
from edu_infra.outbox.store import OutboxEntry
from edu_infra.sqlalchemy.connection import UowConnection
from edu_infra.sqlalchemy.errors import is_driver_error
from edu_infra.sqlalchemy.pg_rows import PgRows
from edu_infra.sqlalchemy.replicas import ReplicaSet
from edu_infra.sqlalchemy.rls import THIS_VXID
from edu_infra.sqlalchemy.routing import ReadRoute, token_of
from edu_infra.sqlalchemy.rows import Other, RowPath

log = logging.getLogger("edu_infra")

#: The position a commit reached: after it, so the commit record is at or before it.
COMMIT_POSITION = "SELECT pg_current_wal_insert_lsn()::text, " + THIS_VXID


class RoutedRows:
    """A row path with replicas in mind: a read-only unit of work's writes are refused before
    any SQL (`begin` does nothing: its reads begin on their own); a read-write one's commits
    are recorded as consistency tokens."""

    def __init__(
        self,
        inner: RowPath,
        *,
        read_only: bool,
        connection: UowConnection | None = None,
        route: ReadRoute | None = None,
        replicas: ReplicaSet | None = None,
    ) -> None:
        self._inner = inner
        self.read_only = read_only
        self._connection = connection
        self.route = route
        self._replicas = replicas
        self._wrote = False
        #: the position of this unit of work's last commit that wrote (None: none yet)
        self.token: ConsistencyToken | None = None

    def _writing(self) -> None:
        if self.read_only:
            raise ReadOnlyError()
        self._wrote = True

    # ------------------------------------------------------------------ transaction

    async def driver(self) -> Any:
        """The asyncpg connection, in the unit of work's transaction (PostgreSQL only)."""
        assert isinstance(self._inner, PgRows)
        return await self._inner.driver()

    def sync_bind(self) -> Connection | None:
        self._wrote = not self.read_only  # the session may write (a hard delete, a flush)
        return self._inner.sync_bind()

    def taint(self) -> None:
        self._wrote = not self.read_only  # raw SQL may write
        self._inner.taint()

    async def begin(self) -> None:
        if not self.read_only:
            await self._inner.begin()

    async def commit(self) -> None:
        if self.read_only:
            await self._end_reading()
            return
        await self._inner.commit()
        if self._wrote and self._connection is not None and self._replicas is not None:
            self._wrote = False
            await self._record_position(self._connection, self._replicas)

    async def _record_position(self, connection: UowConnection, replicas: ReplicaSet) -> None:
        """The commit's token; if it cannot be read, this call chain reads the primary."""
        try:
            row = await connection.between_transactions(COMMIT_POSITION)
            token = None if row is None else token_of(row[0])
            token = None if token is None else token.at_record_end()
        except Exception:  # committed already: never fail the commit for its token
            log.warning("reading the commit's WAL position failed", exc_info=True)
            token = None
        consistency.committed(token)
        if token is not None:
            self.token = token
            replicas.committed(token)

    async def _end_reading(self) -> None:
        """A read-only transaction has nothing to make durable: a connection lost at its
        COMMIT (a replica going down) loses nothing, so it is discarded, not reported."""
        try:
            await self._inner.commit()
        except Exception as error:
            if not is_driver_error(error):
                raise
            log.info("a read-only transaction's connection was lost at its end")
            await self._inner.invalidate()

    async def rollback(self) -> None:
        self._wrote = False
        await self._inner.rollback()

    async def invalidate(self) -> None:
        await self._inner.invalidate()

    async def close(self) -> None:
        await self._inner.close()

    async def fail_over(self) -> bool:
        return self.route is not None and await self.route.fail_over()

    # ------------------------------------------------------------------ rows

    async def get(
        self, cls: type[Entity], key: UUID, *, include_deleted: bool, lock: bool
    ) -> Entity | None:
        return await self._inner.get(cls, key, include_deleted=include_deleted, lock=lock)

    async def page(self, bound: BoundQuery, *, include_deleted: bool) -> list[Entity]:
        return await self._inner.page(bound, include_deleted=include_deleted)

    async def count(self, bound: BoundQuery, *, include_deleted: bool) -> int:
        return await self._inner.count(bound, include_deleted=include_deleted)

    async def groups(
        self,
        cls: type[Entity],
        by: Sequence[str],
        flt: Filter | None,
        measures: Sequence[Filter],
        others: Sequence[Other],
    ) -> Sequence[Sequence[Any]]:
        return await self._inner.groups(cls, by, flt, measures, others)

    async def stream(self, bound: BoundQuery, batch_size: int) -> Any:
        return await self._inner.stream(bound, batch_size)

    async def insert(self, entity: Entity) -> None:
        self._writing()
        await self._inner.insert(entity)

    async def copy(self, batch: list[Entity]) -> None:
        self._writing()
        await self._inner.copy(batch)

    async def insert_rows(self, cls: type[Entity], rows: list[dict[str, Any]]) -> None:
        self._writing()
        await self._inner.insert_rows(cls, rows)

    async def refresh_statistics(self, inserted: Mapping[str, int]) -> None:
        if not self.read_only:
            await self._inner.refresh_statistics(inserted)

    async def update(self) -> None:
        self._writing()
        await self._inner.update()

    async def enqueue(self, entries: Sequence[OutboxEntry]) -> None:
        self._writing()
        await self._inner.enqueue(entries)


__all__ = ["COMMIT_POSITION", "RoutedRows"]
