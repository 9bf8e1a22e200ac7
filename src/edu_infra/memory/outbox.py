"""The in-memory outbox: the rows a commit wrote, claimed and settled as the SQL one does.

Rows live in the shared `InMemoryStore` (`store.outbox`), written by a unit of work's
commit in the same synchronous step as its entities. Every operation here runs without
an await, so it is atomic under asyncio: two relays never claim one row.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from attrs import define

from edu_infra.outbox.store import (
    ClaimedEvent,
    DeadLetter,
    Failure,
    OutboxEntry,
    OutboxState,
)


@define
class OutboxRow:
    """One stored event and its delivery state."""

    key: UUID
    organization_id: UUID
    kind: str
    payload: dict[str, Any]
    created_at: datetime
    available_at: datetime
    state: OutboxState = OutboxState.PENDING
    attempts: int = 0
    lease_owner: str | None = None
    lease_until: datetime | None = None
    last_error: str | None = None


def new_rows(entries: Sequence[OutboxEntry]) -> list[OutboxRow]:
    """Rows for a commit's entries (payloads copied: the store never shares objects)."""
    return [
        OutboxRow(
            key=e.key,
            organization_id=e.organization_id,
            kind=e.kind,
            payload=copy.deepcopy(dict(e.payload)),
            created_at=e.created_at,
            available_at=e.created_at,
        )
        for e in entries
    ]


class InMemoryOutbox:
    """`edu_infra.outbox.OutboxStore` over an in-memory store's rows."""

    def __init__(self, rows: dict[UUID, OutboxRow]) -> None:
        self.rows = rows

    def _visible(self, row: OutboxRow, tenant: UUID | None) -> bool:
        return tenant is None or row.organization_id == tenant

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
        wanted = None if keys is None else set(keys)
        due = [
            row
            for row in self.rows.values()
            if row.state is OutboxState.PENDING
            and row.available_at <= now
            and (row.lease_until is None or row.lease_until <= now)
            and (wanted is None or row.key in wanted)
            and self._visible(row, tenant)
        ]
        due.sort(key=lambda row: (row.available_at, row.key))
        claimed = []
        for row in due[:limit]:
            row.attempts += 1
            row.lease_owner, row.lease_until = owner, now + lease
            claimed.append(
                ClaimedEvent(
                    key=row.key,
                    organization_id=row.organization_id,
                    kind=row.kind,
                    payload=copy.deepcopy(row.payload),
                    attempts=row.attempts,
                    created_at=row.created_at,
                )
            )
        return claimed

    def _held(
        self, organization_id: UUID, key: UUID, owner: str, tenant: UUID | None
    ) -> OutboxRow | None:
        row = self.rows.get(key)
        if row is None or row.organization_id != organization_id or row.lease_owner != owner:
            return None
        return row if self._visible(row, tenant) else None

    async def settle(
        self,
        *,
        owner: str,
        delivered: Sequence[ClaimedEvent],
        failed: Sequence[Failure],
        tenant: UUID | None = None,
    ) -> None:
        for event in delivered:
            if self._held(event.organization_id, event.key, owner, tenant) is not None:
                del self.rows[event.key]
        for failure in failed:
            row = self._held(failure.organization_id, failure.key, owner, tenant)
            if row is None:
                continue
            row.lease_owner = row.lease_until = None
            row.last_error = failure.error
            if failure.retry_at is None:
                row.state = OutboxState.DEAD
            else:
                row.available_at = failure.retry_at

    async def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        dead = sorted(
            (row for row in self.rows.values() if row.state is OutboxState.DEAD),
            key=lambda row: (row.created_at, row.key),
        )
        return [
            DeadLetter(
                key=row.key,
                organization_id=row.organization_id,
                kind=row.kind,
                attempts=row.attempts,
                last_error=row.last_error,
                created_at=row.created_at,
            )
            for row in dead[:limit]
        ]

    async def requeue(self, *, now: datetime, keys: Sequence[UUID] | None = None) -> int:
        wanted = None if keys is None else set(keys)
        count = 0
        for row in self.rows.values():
            if row.state is OutboxState.DEAD and (wanted is None or row.key in wanted):
                row.state, row.attempts, row.available_at = OutboxState.PENDING, 0, now
                row.last_error = None
                count += 1
        return count

    async def counts(self) -> dict[OutboxState, int]:
        counts = dict.fromkeys(OutboxState, 0)
        for row in self.rows.values():
            counts[row.state] += 1
        return counts


__all__ = ["InMemoryOutbox", "OutboxRow", "new_rows"]
