"""What an adapter's outbox offers the relay: the rows a commit wrote, claimed with a lease.

A unit of work writes one `OutboxEntry` per durable domain event in the transaction of
the change (so the event exists exactly when the change does). The relay then `claim`s
due rows: each claim counts an attempt and leases the row to its owner until
`now + lease`, so that no other relay takes it meanwhile; `settle` deletes what was
delivered and schedules (or dead-letters) what failed, but only rows the owner still
holds. A relay that dies leaves its lease to expire: the row is then claimed again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol
from uuid import UUID

from attrs import frozen


class OutboxState(StrEnum):
    PENDING = "pending"
    DEAD = "dead"


@frozen(kw_only=True)
class OutboxEntry:
    """One durable event of a commit, as its row is first written."""

    key: UUID
    organization_id: UUID
    kind: str
    payload: Mapping[str, Any]
    created_at: datetime


@frozen(kw_only=True)
class ClaimedEvent:
    """A row the relay now holds: `attempts` counts this attempt too."""

    key: UUID
    organization_id: UUID
    kind: str
    payload: Mapping[str, Any]
    attempts: int
    created_at: datetime


@frozen(kw_only=True)
class Failure:
    """A failed delivery: retried from `retry_at`, or dead-lettered (`retry_at` None)."""

    key: UUID
    organization_id: UUID
    error: str
    retry_at: datetime | None


@frozen(kw_only=True)
class DeadLetter:
    """An event the relay gave up on (kept, with its last error, until requeued)."""

    key: UUID
    organization_id: UUID
    kind: str
    attempts: int
    last_error: str | None
    created_at: datetime


class OutboxStore(Protocol):
    """An adapter's outbox rows. `tenant` None works across organizations (the relay's
    loop); a tenant sees and settles only its own rows (the delivery right after a commit)."""

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
        """Lease up to `limit` pending rows that are due and not leased (of `keys` only,
        when given), oldest first; rows another relay is claiming right now are skipped."""
        ...

    async def settle(
        self,
        *,
        owner: str,
        delivered: Sequence[ClaimedEvent],
        failed: Sequence[Failure],
        tenant: UUID | None = None,
    ) -> None:
        """Delete the delivered rows and reschedule or dead-letter the failed ones, of the
        rows `owner` still holds. A row is named by organization and key: a key another
        organization's row also has (raw SQL can write one) never touches that row."""
        ...

    async def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        """Dead-lettered rows, oldest first."""
        ...

    async def requeue(self, *, now: datetime, keys: Sequence[UUID] | None = None) -> int:
        """Dead letters (all, or those of `keys`) back to pending with fresh attempts."""
        ...

    async def counts(self) -> dict[OutboxState, int]:
        """How many rows are in each state."""
        ...


__all__ = [
    "ClaimedEvent",
    "DeadLetter",
    "Failure",
    "OutboxEntry",
    "OutboxState",
    "OutboxStore",
]
