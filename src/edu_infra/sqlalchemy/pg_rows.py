"""The PostgreSQL row path: statements compiled once per shape, sent on the driver.

A get through the ORM spends most of its time outside the database (building and compiling
the statement, loader criteria, the Result machinery, the greenlet bridge: about 1 ms of
Python against 0.1 ms of round trip). Here reads, single inserts and versioned updates are
compiled once per shape (`pg_statements.PgStatements`) and sent on the unit of work's one connection
(`connection.UowConnection`); rows become entities without the ORM and wait in the identity
map, detached with their identity, until the session is needed (a hard delete, a change
made next to a session write, a stream): then they are attached (no SQL) and flushed as the
ORM would. Bulk inserts go by COPY (`bulk.copy_insert`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from sqlalchemy.engine import Connection
from sqlalchemy.orm.base import NO_VALUE, instance_state

from edu_domain.errors import ConcurrencyConflict
from edu_domain.model import ENTITY_TYPES, Entity
from edu_domain.model.base import identical, validate_contents
from edu_domain.ports import ChangeKind
from edu_domain.query import BoundQuery, Filter
from edu_infra.outbox.store import OutboxEntry
from edu_infra.sqlalchemy.changes import ChangeLog
from edu_infra.sqlalchemy.connection import UowConnection
from edu_infra.sqlalchemy.identity import Identities
from edu_infra.sqlalchemy.orm_rows import open_stream
from edu_infra.sqlalchemy.pg_copy import copy_insert, copy_rows
from edu_infra.sqlalchemy.pg_statements import ID, TENANT, PgStatements, Prepared
from edu_infra.sqlalchemy.row_writes import outbox_insert
from edu_infra.sqlalchemy.rows import Other, bind_values, compiled
from edu_infra.sqlalchemy.sa_internals import mark_committed
from edu_infra.sqlalchemy.statistics import analyze_stale, warn


class PgRows:
    """`rows.RowPath` on asyncpg, for one unit of work (its connection, tenant, entities)."""

    def __init__(
        self,
        statements: PgStatements,
        connection: UowConnection,
        identities: Identities,
        changes: ChangeLog,
        *,
        schema: str,
    ) -> None:
        self._statements = statements
        self._connection = connection
        self._identities = identities
        self._changes = changes
        self._tenant = changes.tenant
        self._scoped = changes.tenant is not None
        self._schema = schema
        self._turn = asyncio.Lock()

    # ------------------------------------------------------------------ transaction

    def sync_bind(self) -> Connection | None:
        return self._connection.sync_connection()

    def taint(self) -> None:
        self._connection.tainted = True

    async def driver(self) -> Any:
        """The asyncpg connection, in this unit of work's transaction."""
        return await self._connection.begin()

    async def _send(self, method: str, sql: str, *args: Any) -> Any:
        """One statement on the connection. Calls of one unit of work from concurrent tasks
        (`asyncio.gather`) take turns: asyncpg runs one operation per connection at a time."""
        async with self._turn:
            driver = await self._connection.begin()
            return await getattr(driver, method)(sql, *args)

    async def begin(self) -> None:
        async with self._turn:
            await self._connection.begin()

    async def commit(self) -> None:
        await self._connection.commit()

    async def rollback(self) -> None:
        await self._connection.rollback()

    async def invalidate(self) -> None:
        await self._connection.invalidate()

    async def close(self) -> None:
        await self._connection.close()

    async def fail_over(self) -> bool:
        return False

    # ------------------------------------------------------------------ reads

    def _args(self, prepared: Prepared, values: dict[str, Any]) -> list[Any]:
        values[TENANT] = self._tenant
        return bind_values(lambda: prepared.args(values), "query")

    async def get(
        self, cls: type[Entity], key: UUID, *, include_deleted: bool, lock: bool
    ) -> Entity | None:
        reads = self._statements
        loader = reads.loader(cls)
        identities = self._identities
        existing = identities.known(loader.identity(key))
        if existing is not None and not lock:
            return existing
        prepared = compiled(
            lambda: reads.get(cls, scoped=self._scoped, include_deleted=include_deleted, lock=lock)
        )
        args = self._args(prepared, {ID: key})
        record = await self._send("fetchrow", prepared.sql, *args)
        if record is None:
            return None
        return identities.adopt(loader, record, refresh=lock)

    async def page(self, bound: BoundQuery, *, include_deleted: bool) -> list[Entity]:
        prepared, values = compiled(
            lambda: self._statements.page(
                bound, scoped=self._scoped, include_deleted=include_deleted
            )
        )
        args = self._args(prepared, values)
        records = await self._send("fetch", prepared.sql, *args)
        return self._identities.adopt_all(self._statements.loader(bound.entity), records)

    async def count(self, bound: BoundQuery, *, include_deleted: bool) -> int:
        prepared, values = compiled(
            lambda: self._statements.count(
                bound, scoped=self._scoped, include_deleted=include_deleted
            )
        )
        args = self._args(prepared, values)
        return int(await self._send("fetchval", prepared.sql, *args) or 0)

    async def groups(
        self,
        cls: type[Entity],
        by: Sequence[str],
        flt: Filter | None,
        measures: Sequence[Filter],
        others: Sequence[Other],
    ) -> Sequence[Sequence[Any]]:
        prepared, values = compiled(
            lambda: self._statements.groups(
                cls, by, flt, measures, scoped=self._scoped, others=others
            )
        )
        args = self._args(prepared, values)
        records = await self._send("fetch", prepared.sql, *args)
        return [prepared.row(record) for record in records]

    async def stream(self, bound: BoundQuery, batch_size: int) -> Any:
        return await open_stream(self._identities, self._statements.compiler, bound, batch_size)

    # ------------------------------------------------------------------ writes

    async def insert(self, entity: Entity) -> None:
        """One INSERT on the driver: what a flush of one new entity would send."""
        identity = self._statements.loader(type(entity)).identity(entity.id)
        if self._identities.has_pending():  # earlier changes first, in the order they were made
            await self.update()
        self._changes.stamp_insert(entity)
        entity.__dict__["version"] = 1
        insert = self._statements.insert(type(entity))
        args = bind_values(lambda: insert.args(entity), "entity")
        await self._send("execute", insert.sql, *args)
        self._identities.inserted_now(entity, identity)
        self._identities.track(entity)
        self._changes.record(entity, ChangeKind.INSERT)

    async def copy(self, batch: list[Entity]) -> None:
        """COPY per class; the entities are then held weakly, as loaded ones are: the caller's
        references keep them (and a change the caller makes later is written at commit),
        while a bulk load the caller drops costs no memory. Their events are taken now."""
        if self._identities.has_pending():  # earlier changes first
            await self.update()
        async with self._turn:
            await self._copy(await self.driver(), batch)
        for entity in batch:
            self._identities.copied_events.extend(entity.pull_events())

    async def _copy(self, driver: Any, batch: list[Entity]) -> None:
        for cls in ENTITY_TYPES:
            of_class = [e for e in batch if type(e) is cls]
            if not of_class:
                continue
            for entity in of_class:
                entity.__dict__["version"] = 1
            await copy_insert(driver, self._statements.dialect, of_class, schema=self._schema)
            loader = self._statements.loader(cls)
            tenant_field = cls.__tenant_field__
            for entity in of_class:
                self._identities.bulk_inserted(entity, loader.identity(entity.id))
                values = entity.__dict__
                self._changes.record_row(cls, entity.id, values[tenant_field], ChangeKind.INSERT)

    async def insert_rows(self, cls: type[Entity], rows: list[dict[str, Any]]) -> None:
        """COPY, as `copy` does, with nothing to track afterwards."""
        if self._identities.has_pending():  # earlier changes first
            await self.update()
        async with self._turn:
            driver = await self.driver()
            await copy_rows(driver, self._statements.dialect, cls, rows, schema=self._schema)

    async def refresh_statistics(self, inserted: Mapping[str, int]) -> None:
        """In a transaction of its own, after the commit; a failure is only logged."""
        async with self._turn:
            try:
                driver = await self._connection.begin()
                await analyze_stale(driver, self._schema, inserted, self._changes.tenant)
                await self._connection.commit()
            except Exception as error:
                warn(error)
                try:
                    await self._connection.rollback()
                except Exception:
                    await self._connection.invalidate()

    async def enqueue(self, entries: Sequence[OutboxEntry]) -> None:
        """One executemany on the driver (a prepared INSERT, one round trip)."""
        insert = outbox_insert(self._statements.dialect)
        rows = bind_values(lambda: insert.rows(entries), "event")
        await (await self.driver()).executemany(insert.sql, rows)

    async def update(self) -> None:
        """On the driver when only loaded entities changed, else through the session
        (which adopts the loaded entities first)."""
        identities = self._identities
        if identities.session_busy():
            identities.attach_loaded()
            await identities.session.flush()
            return
        for obj in identities.modified_loaded():
            await self._update_one(obj)

    async def _update_one(self, obj: Entity) -> None:
        """One versioned UPDATE of a changed loaded entity, as the ORM's flush would send."""
        state = instance_state(obj)
        values = obj.__dict__
        committed = state.committed_state
        changed = [
            name
            for name, old in committed.items()
            if name in values and (old is NO_VALUE or not identical(old, values[name]))
        ]
        if not changed:
            mark_committed(state, values)
            return
        self._changes.check_write(obj)
        validate_contents(obj)
        self._changes.stamp_update(obj)
        old_version = committed.get("version", values["version"])
        columns = tuple(sorted({*changed, "updated_at", "updated_by"} - {"version"}))
        update = self._statements.update(type(obj), columns)
        args = bind_values(lambda: update.args(obj, old_version), "entity")
        status = await self._send("execute", update.sql, *args)
        if status != "UPDATE 1":
            raise ConcurrencyConflict(type(obj).__name__, obj.id)
        values["version"] = old_version + 1
        mark_committed(state, values)
        self._changes.record(obj, ChangeKind.UPDATE)


__all__ = ["PgRows"]
