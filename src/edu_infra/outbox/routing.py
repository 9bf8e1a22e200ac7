"""What a unit of work does with the events of a commit, the same on every adapter.

Durable events (all of them, unless the publisher's `durable(event)` says otherwise)
become outbox rows written in the commit's own transaction; the others are published
after the commit, best effort, as events always were. After the commit: the callbacks,
the direct events, then the commit listeners; each failure is logged, none is raised (the
commit happened). The durable events are delivered once the unit of work has closed
(`after_close`), when its connection is back in the pool: a delivery needs a connection of
its own, and taking a second one while holding the first could starve the pool under load.
Without an outbox (`relay` None) every event is published directly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from uuid import UUID

from attrs import frozen

from edu_domain.errors import TenantViolation, ValidationError
from edu_domain.model.base import DomainEvent
from edu_domain.model.ids import uuid7
from edu_domain.ports import AfterCommit, Change, Clock, CommitListener, EventPublisher
from edu_infra.outbox.codec import encode_event
from edu_infra.outbox.relay import OutboxRelay
from edu_infra.outbox.seal import Sealer
from edu_infra.outbox.store import OutboxEntry

log = logging.getLogger("edu_infra")


@frozen
class Outgoing:
    """The events of one commit: rows for the outbox, and events to publish directly."""

    durable: tuple[OutboxEntry, ...] = ()
    direct: tuple[DomainEvent, ...] = ()


NOTHING = Outgoing()


def _organization_of(event: DomainEvent) -> UUID:
    organization_id = getattr(event, "organization_id", None)
    if not isinstance(organization_id, UUID):
        raise ValidationError("event", f"{type(event).__name__} must name its organization_id")
    return organization_id


class EventRouting:
    """A factory's publisher, its outbox relay (if any), listeners and clock."""

    def __init__(
        self,
        publisher: EventPublisher | None,
        relay: OutboxRelay | None,
        listeners: Sequence[CommitListener],
        clock: Clock,
        sealer: Sealer | None = None,
    ) -> None:
        self.publisher = publisher
        self.relay = relay
        self.listeners = tuple(listeners)
        self.clock = clock
        self.sealer = sealer

    def outgoing(self, events: Sequence[DomainEvent], tenant: UUID | None) -> Outgoing:
        """Split and encode; an event of another organization than a scoped unit of work's
        is a TenantViolation (PostgreSQL's row-level security refuses its row too)."""
        if not events or self.publisher is None:
            return NOTHING
        if self.relay is None:
            return Outgoing((), tuple(events))
        durable = getattr(self.publisher, "durable", None)
        entries: list[OutboxEntry] = []
        direct: list[DomainEvent] = []
        now = self.clock.now()
        for event in events:
            if durable is not None and not durable(event):
                direct.append(event)
                continue
            organization_id = _organization_of(event)
            if tenant is not None and organization_id != tenant:
                raise TenantViolation(
                    f"{type(event).__name__} names another organization than the unit of work"
                )
            key = uuid7()
            kind, payload = encode_event(
                event, sealer=self.sealer, place=f"{key}:{organization_id}"
            )
            entries.append(
                OutboxEntry(
                    key=key,
                    organization_id=organization_id,
                    kind=kind,
                    payload=payload,
                    created_at=now,
                )
            )
        return Outgoing(tuple(entries), tuple(direct))

    async def after_commit(
        self,
        callbacks: Sequence[AfterCommit],
        outgoing: Outgoing,
        changes: Sequence[Change],
        tenant: UUID | None,
    ) -> list[UUID]:
        """The after-commit work; returns the keys to deliver after the unit of work closed."""
        for callback in callbacks:
            try:
                await callback()
            except Exception:
                log.exception("an after-commit callback failed")
        if outgoing.direct and self.publisher is not None:
            try:
                await self.publisher.publish(outgoing.direct)
            except Exception:
                log.exception("publishing domain events failed")
        if changes:
            for listener in self.listeners:
                try:
                    await listener.committed(changes)
                except Exception:
                    log.exception("a commit listener failed")
        if not outgoing.durable or self.relay is None:
            return []
        if not self.relay.settings.inline:
            self.relay.wake()
            return []
        return [entry.key for entry in outgoing.durable]

    async def after_close(self, keys: Sequence[UUID], tenant: UUID | None) -> None:
        """Deliver what the closed unit of work committed (never raises)."""
        if keys and self.relay is not None:
            await self.relay.deliver_committed(keys, tenant)


__all__ = ["NOTHING", "EventRouting", "Outgoing"]
