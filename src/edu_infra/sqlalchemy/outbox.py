"""`edu_infra.outbox.OutboxStore` over the `outbox_events` table (PostgreSQL, SQLite).

Each operation is one short unit of work of the factory's: scoped to a tenant (the
delivery right after a commit: row-level security and the tenant predicate keep it to its
own rows) or unscoped (the relay's loop, the operator's commands). A claim is one
statement: `UPDATE ... WHERE (organization_id, id) IN (SELECT ... FOR UPDATE SKIP LOCKED)
RETURNING ...`, so concurrent relays on PostgreSQL never wait for each other nor take the
same row; SQLite has no row locks (nor `FOR UPDATE`) but runs one writer at a time, so a
claim is atomic there too. The lease then keeps the row from other relays until it ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from sqlalchemy import delete, func, or_, select, tuple_, update
from sqlalchemy.sql import ColumnElement

from edu_infra.outbox.store import ClaimedEvent, DeadLetter, Failure, OutboxState
from edu_infra.sqlalchemy.tables import outbox_events
from edu_infra.sqlalchemy.uow import SqlUnitOfWork

_T = outbox_events


class _Opens(Protocol):
    def __call__(self, *, tenant: UUID, actor: UUID | None = None) -> SqlUnitOfWork: ...
    def unscoped(self, *, actor: UUID | None = None) -> SqlUnitOfWork: ...


def _mine(tenant: UUID | None) -> list[ColumnElement[bool]]:
    return [] if tenant is None else [_T.c.organization_id == tenant]


class SqlOutbox:
    """The outbox rows of a `SqlUnitOfWorkFactory`'s database."""

    def __init__(self, factory: _Opens) -> None:
        self._factory = factory

    def _open(self, tenant: UUID | None) -> SqlUnitOfWork:
        return self._factory.unscoped() if tenant is None else self._factory(tenant=tenant)

    async def _run(self, tenant: UUID | None, *statements: Any) -> list[list[Any]]:
        async with self._open(tenant) as uow:
            results = [await uow.execute(statement) for statement in statements]
            await uow.commit()
        return results

    async def claim(
        self,
        *,
        owner: str,
        now: datetime,
        lease: timedelta,
        limit: int,
        keys: Sequence[UUID] | None = None,
        tenant: UUID | None = None,
    ) -> list[ClaimedEvent]:
        due = select(_T.c.organization_id, _T.c.id).where(
            _T.c.state == OutboxState.PENDING,
            _T.c.available_at <= now,
            or_(_T.c.lease_until.is_(None), _T.c.lease_until <= now),
            *_mine(tenant),
        )
        if keys is not None:
            due = due.where(_T.c.id.in_(list(keys)))
        due = due.order_by(_T.c.available_at, _T.c.id).limit(limit)
        claim = (
            update(_T)
            .where(tuple_(_T.c.organization_id, _T.c.id).in_(due.with_for_update(skip_locked=True)))
            .values(attempts=_T.c.attempts + 1, lease_owner=owner, lease_until=now + lease)
            .returning(
                _T.c.organization_id,
                _T.c.id,
                _T.c.kind,
                _T.c.payload,
                _T.c.attempts,
                _T.c.created_at,
            )
        )
        [rows] = await self._run(tenant, claim)
        claimed = [
            ClaimedEvent(
                organization_id=row[0],
                key=row[1],
                kind=row[2],
                payload=dict(row[3]) if isinstance(row[3], dict) else row[3],
                attempts=row[4],
                created_at=row[5],
            )
            for row in rows
        ]
        return sorted(claimed, key=lambda event: event.key)  # ids are time-ordered (UUIDv7)

    async def settle(
        self,
        *,
        owner: str,
        delivered: Sequence[ClaimedEvent],
        failed: Sequence[Failure],
        tenant: UUID | None = None,
    ) -> None:
        held = [_T.c.lease_owner == owner, *_mine(tenant)]
        statements: list[Any] = []
        if delivered:
            rows = [(event.organization_id, event.key) for event in delivered]
            statements.append(
                delete(_T).where(tuple_(_T.c.organization_id, _T.c.id).in_(rows), *held)
            )
        for failure in failed:
            state = OutboxState.DEAD if failure.retry_at is None else OutboxState.PENDING
            statements.append(
                update(_T)
                .where(
                    _T.c.organization_id == failure.organization_id,
                    _T.c.id == failure.key,
                    *held,
                )
                .values(
                    state=state,
                    available_at=failure.retry_at or _T.c.available_at,
                    lease_owner=None,
                    lease_until=None,
                    last_error=failure.error[:512],
                )
            )
        if statements:
            await self._run(tenant, *statements)

    async def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        query = (
            select(
                _T.c.id,
                _T.c.organization_id,
                _T.c.kind,
                _T.c.attempts,
                _T.c.last_error,
                _T.c.created_at,
            )
            .where(_T.c.state == OutboxState.DEAD)
            .order_by(_T.c.created_at, _T.c.id)
            .limit(limit)
        )
        [rows] = await self._run(None, query)
        return [
            DeadLetter(
                key=row[0],
                organization_id=row[1],
                kind=row[2],
                attempts=row[3],
                last_error=row[4],
                created_at=row[5],
            )
            for row in rows
        ]

    async def requeue(self, *, now: datetime, keys: Sequence[UUID] | None = None) -> int:
        statement = (
            update(_T)
            .where(_T.c.state == OutboxState.DEAD)
            .values(state=OutboxState.PENDING, attempts=0, available_at=now, last_error=None)
            .returning(_T.c.id)
        )
        if keys is not None:
            statement = statement.where(_T.c.id.in_(list(keys)))
        [rows] = await self._run(None, statement)
        return len(rows)

    async def counts(self) -> dict[OutboxState, int]:
        query = select(_T.c.state, func.count()).group_by(_T.c.state)
        [rows] = await self._run(None, query)
        counts = dict.fromkeys(OutboxState, 0)
        for state, count in rows:
            counts[OutboxState(state)] = int(count)
        return counts


__all__ = ["SqlOutbox"]
