"""The ORM row path (SQLite), and the stream both paths share.

Everything goes through the unit of work's AsyncSession: the ORM events (`session.py`) add
the tenant and soft-delete filters (`guard.py`) to every read and stamp every flush. The
session owns its connection and transaction, so the transaction methods have nothing to do.
Streams use the ORM on PostgreSQL too: `yield_per` over a server-side cursor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import attrs
from sqlalchemy import insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, InvalidRequestError

from edu_domain.model import ENTITY_TYPES, Entity
from edu_domain.query import BoundQuery, Filter
from edu_infra.outbox.store import OutboxEntry
from edu_infra.sqlalchemy.changes import ChangeLog
from edu_infra.sqlalchemy.compiler import QueryCompiler
from edu_infra.sqlalchemy.errors import classify
from edu_infra.sqlalchemy.guard import criteria
from edu_infra.sqlalchemy.identity import Identities, identity_key
from edu_infra.sqlalchemy.mapping import table_of
from edu_infra.sqlalchemy.options import INCLUDE_DELETED
from edu_infra.sqlalchemy.row_writes import outbox_values
from edu_infra.sqlalchemy.rows import Other, compiled
from edu_infra.sqlalchemy.tables import outbox_events
from edu_infra.sqlalchemy.write_errors import missing_row_reference


async def open_stream(
    identities: Identities, compiler: QueryCompiler, bound: BoundQuery, batch_size: int
) -> Any:
    """An ORM result over the whole query (no page), `batch_size` rows per fetch."""
    identities.attach_loaded()
    whole = attrs.evolve(bound, skip=0, limit=None, after=None)
    stmt = compiled(lambda: compiler.select_page(whole).execution_options(yield_per=batch_size))
    return await identities.session.stream_scalars(stmt)


class OrmRows:
    """`rows.RowPath` on the session, for one unit of work."""

    def __init__(self, compiler: QueryCompiler, identities: Identities, changes: ChangeLog) -> None:
        self._compiler = compiler
        self._identities = identities
        self._changes = changes

    # ------------------------------------------------------------------ transaction

    def sync_bind(self) -> Connection | None:
        return None

    def taint(self) -> None:
        """SQLite connections hold no session state another unit of work could inherit."""

    async def begin(self) -> None:
        """The session begins on its first statement."""

    async def commit(self) -> None:
        """The session's commit was the commit."""

    async def rollback(self) -> None:
        """The session's rollback was the rollback."""

    async def invalidate(self) -> None:
        """The session's invalidate released the connection."""

    async def close(self) -> None:
        """The session's close released the connection."""

    async def fail_over(self) -> bool:
        return False

    # ------------------------------------------------------------------ reads

    async def get(
        self, cls: type[Entity], key: UUID, *, include_deleted: bool, lock: bool
    ) -> Entity | None:
        held = self._identities.known(identity_key(cls, key)) if lock else None
        if held is not None and self._identities.in_session(held):
            # a locking read refreshes the held object, as the driver path does (the ORM's
            # own locking get would refuse a row another unit of work changed meanwhile)
            try:
                await self._identities.session.refresh(held, with_for_update=True)
            except InvalidRequestError:  # the row is gone
                return None
            return held
        return await self._identities.session.get(
            cls,
            key,
            execution_options={INCLUDE_DELETED: include_deleted},
            with_for_update=True if lock else None,
            populate_existing=lock,
        )

    async def page(self, bound: BoundQuery, *, include_deleted: bool) -> list[Entity]:
        stmt = compiled(
            lambda: self._compiler.select_page(bound).execution_options(
                **{INCLUDE_DELETED: include_deleted}
            )
        )
        return list((await self._identities.session.scalars(stmt)).all())

    async def count(self, bound: BoundQuery, *, include_deleted: bool) -> int:
        stmt = compiled(
            lambda: self._compiler.select_count(bound).execution_options(
                **{INCLUDE_DELETED: include_deleted}
            )
        )
        return int(await self._identities.session.scalar(stmt) or 0)

    async def groups(
        self,
        cls: type[Entity],
        by: Sequence[str],
        flt: Filter | None,
        measures: Sequence[Filter],
        others: Sequence[Other],
    ) -> Sequence[Sequence[Any]]:
        tenant = self._changes.tenant
        guarded = []
        for other, other_filter in others:
            where = criteria(other, tenant=tenant, include_deleted=False)
            guarded.append((other, other_filter, [] if where is None else [where]))
        stmt = compiled(
            lambda: self._compiler.select_groups(cls, by, flt, measures, others=guarded)
        )
        rows: Sequence[Sequence[Any]] = (await self._identities.session.execute(stmt)).all()
        return rows

    async def stream(self, bound: BoundQuery, batch_size: int) -> Any:
        return await open_stream(self._identities, self._compiler, bound, batch_size)

    # ------------------------------------------------------------------ writes

    async def insert(self, entity: Entity) -> None:
        session = self._identities.session
        self._changes.stamp_insert(entity)
        session.add(entity)
        self._identities.track(entity)
        await session.flush()

    async def copy(self, batch: list[Entity]) -> None:
        """One flush per class in dependency order (`ENTITY_TYPES`), as COPY does: without
        relationships the ORM cannot order a batch that lists a row before its target."""
        session = self._identities.session
        await session.flush()
        for cls in ENTITY_TYPES:
            of_class = [e for e in batch if type(e) is cls]
            if of_class:
                session.add_all(of_class)
                await session.flush()
        for entity in batch:
            self._identities.track(entity)

    async def insert_rows(self, cls: type[Entity], rows: list[dict[str, Any]]) -> None:
        """One executemany INSERT on the session's connection (earlier changes flushed first);
        the session never sees the rows as objects."""
        session = self._identities.session
        await session.flush()
        try:
            await session.execute(insert(table_of(cls)), rows)
        except IntegrityError as error:
            if classify(error).kind == "foreign_key":
                missing = await missing_row_reference(session, cls, rows)
                if missing is not None:
                    raise missing from None
            raise

    async def refresh_statistics(self, inserted: Mapping[str, int]) -> None:
        """SQLite plans without gathered statistics: nothing to refresh."""

    async def update(self) -> None:
        self._identities.attach_loaded()
        await self._identities.session.flush()

    async def enqueue(self, entries: Sequence[OutboxEntry]) -> None:
        rows = [outbox_values(entry) for entry in entries]
        await self._identities.session.execute(insert(outbox_events), rows)


__all__ = ["OrmRows", "open_stream"]
