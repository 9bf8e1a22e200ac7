"""A SQL unit of work's transaction, and the boundary where driver errors become domain errors.

Every read and write of a unit of work runs through `read` or `write`: any failure of a
write, and any driver failure of a read, rolls the whole transaction back and empties the
identity map (PostgreSQL has aborted the transaction anyway, and a half-applied unit of
work is worse than none); the unit of work stays usable for a fresh transaction. Entities
the caller holds keep their values: a failed flush makes SQLAlchemy expire every instance
before the error reaches us, so their values are captured at rollback (`capture`, called by
the session's `after_rollback` event) and put back. It is also the session's owner
(`session.SessionOwner`): the ORM events find their rules through it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, TypeVar
from uuid import UUID

from sqlalchemy import ColumnElement
from sqlalchemy.engine import Connection
from sqlalchemy.orm.base import instance_state

from edu_domain.errors import DomainError
from edu_domain.model import DomainEvent, Entity
from edu_domain.ports import ChangeKind
from edu_infra.outbox.routing import NOTHING, EventRouting, Outgoing
from edu_infra.sqlalchemy.changes import ChangeLog
from edu_infra.sqlalchemy.errors import classify, is_driver_error, to_domain_error
from edu_infra.sqlalchemy.guard import criteria
from edu_infra.sqlalchemy.identity import Identities, make_transient
from edu_infra.sqlalchemy.rows import RowPath
from edu_infra.sqlalchemy.write_errors import explain

log = logging.getLogger("edu_infra")
T = TypeVar("T")


class UowTransaction:
    """Commit, rollback and the error boundary of one unit of work; its session's owner."""

    def __init__(
        self,
        rows: RowPath,
        held: Identities,
        changes: ChangeLog,
        on_reset: Callable[[], None],
        *,
        read_only: bool = False,
    ) -> None:
        self._rows = rows
        self._held = held
        self._changes = changes
        self._on_reset = on_reset
        self._read_only = read_only
        self._captured: list[tuple[Entity, dict[str, Any]]] = []

    # ------------------------------------------------------------------ the session's owner

    @property
    def tenant(self) -> UUID | None:
        return self._changes.tenant

    def sync_bind(self) -> Connection | None:
        """The connection the session must use (PostgreSQL: the unit of work's own)."""
        return self._rows.sync_bind()

    def read_criteria(self, cls: type[Any], *, include_deleted: bool) -> ColumnElement[bool] | None:
        """The global filter of `cls` for this unit of work (None: no filter)."""
        return criteria(cls, tenant=self._changes.tenant, include_deleted=include_deleted)

    def check_write(self, entity: Entity) -> None:
        self._changes.check_write(entity)

    def stamp_update(self, entity: Entity) -> None:
        self._changes.stamp_update(entity)

    def record_change(self, entity: Entity, kind: ChangeKind) -> None:
        self._changes.record(entity, kind)

    def capture_values(self) -> None:
        """Keep the attribute values of every object in play (called at rollback)."""
        self._captured.extend(
            (obj, {k: v for k, v in obj.__dict__.items() if k != "_sa_instance_state"})
            for obj in self._held.held()
        )

    # ------------------------------------------------------------------ the transaction

    async def commit(self) -> None:
        session = self._held.session_obj
        if session is not None and self._read_only:
            # Nothing to make durable; SQLite has no read-only transaction, so what raw SQL
            # wrote through `uow.session` is undone here. Handed-out objects keep their values
            # and their place (one object per row; a later change of one is still refused).
            kept = list(session.identity_map.values())
            session.expunge_all()
            await session.rollback()
            session.add_all(kept)
        elif session is not None:
            await session.commit()
        await self._rows.commit()

    async def enqueue(
        self, routing: EventRouting, events: list[DomainEvent], tenant: UUID | None
    ) -> Outgoing:
        """A commit's durable events as outbox rows in its transaction (a refused event,
        such as one of another tenant, fails the commit like any write)."""
        if not events:
            return NOTHING
        found: list[Outgoing] = []

        async def enqueue() -> None:
            outgoing = routing.outgoing(events, tenant)
            found.append(outgoing)
            if outgoing.durable:
                await self._rows.enqueue(outgoing.durable)

        await self.write(enqueue)
        return found[0]

    async def reset(self) -> None:
        """Forget everything since the last commit; handed-out objects keep their values."""
        session = self._held.session_obj
        inserted = self._held.forget()
        self._on_reset()
        self._changes.clear()
        try:
            if session is not None:
                session.expunge_all()
                await session.rollback()
            await self._rows.rollback()
        except Exception:
            log.warning("rollback failed; discarding the connection", exc_info=True)
            await self._invalidate()
        make_transient(inserted)

    async def close(self) -> None:
        try:
            await self.reset()
        finally:
            try:
                if self._held.session_obj is not None:
                    await self._held.session_obj.close()
            except Exception:  # closing must not fail: the connection is discarded
                log.warning("closing the unit of work's session failed", exc_info=True)
            await self._rows.close()

    async def _invalidate(self) -> None:
        try:
            if self._held.session_obj is not None:
                await self._held.session_obj.invalidate()
        except Exception:
            log.debug("invalidating the connection failed", exc_info=True)
        await self._rows.invalidate()

    async def _fail(
        self, versions: Sequence[tuple[Entity, Any]] = (), *, disconnect: bool = False
    ) -> None:
        if disconnect:  # never hand a broken connection back to the pool
            await self._invalidate()
        await self.reset()
        captured, self._captured = self._captured, []
        for obj, values in captured:
            obj.__dict__.update(values)
            state = instance_state(obj)
            state.expired_attributes.difference_update(values)
            state.expired = False
        for obj, version in versions:
            if version is not None:
                obj.__dict__["version"] = version

    async def read(self, op: Callable[[], Awaitable[T]], *, again: bool = True) -> T:
        if self._held.has_pending():
            # Flush through the write path, so a stale or unique error of pending changes is
            # translated like any write (not as a failed read inside autoflush).
            await self.write(self._rows.update)
        self._captured = []
        try:
            return await op()
        except DomainError:
            await self._fail()
            raise
        except Exception as error:
            if not is_driver_error(error):
                raise
            failure = classify(error)
            log.debug("database error during a read", exc_info=True)
            await self._fail(disconnect=failure.disconnect)
            if failure.disconnect and again and await self._rows.fail_over():
                # a read-only unit of work lost its replica: the same read on the primary
                return await self.read(op, again=False)
            raise to_domain_error(failure) from None

    async def write(
        self,
        op: Callable[[], Awaitable[Any]],
        *,
        subject: Entity | None = None,
        operation: Literal["write", "delete"] = "write",
        also: Sequence[Entity] = (),
        begin: bool = True,
    ) -> None:
        """Run a write; any failure resets the unit of work and becomes a domain error."""
        pending, deleting = self._held.in_flight()
        if subject is not None:
            (deleting if operation == "delete" else pending).append(subject)
        pending.extend(also)
        # the committed version of each: a rolled-back flush leaves no version behind
        versions = [(o, o.__dict__.get("version")) for o in (*pending, *deleting)]
        self._captured = []
        try:
            if begin:
                await self._rows.begin()  # begin here: a dead pooled connection is replaced
            await op()
        except DomainError:
            await self._fail(versions)
            raise
        except Exception as error:
            if not is_driver_error(error):
                await self._fail(versions)
                raise
            failure = classify(error)
            log.debug("database error during a write", exc_info=True)
            await self._fail(versions, disconnect=failure.disconnect)
            error = await explain(
                failure, subject, pending, deleting, lambda: self._held.session, self.reset
            )
            raise error from None


__all__ = ["UowTransaction"]
