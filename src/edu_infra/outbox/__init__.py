"""The transactional outbox: domain events stored with the change, delivered by a relay.

A unit of work writes each durable event of a commit as a row in the same transaction
(`routing.EventRouting`); `OutboxRelay` delivers the rows to the publisher at least once,
with an idempotency key (`Envelope.key`), retries with backoff and a dead-letter state.
Adapters implement `OutboxStore` (memory: `edu_infra.memory.InMemoryOutbox`; SQL:
`edu_infra.sqlalchemy.SqlOutbox`); each factory exposes its `outbox` and `relay`.
"""

from edu_infra.outbox.codec import UndeliverableEvent, decode_event, encode_event
from edu_infra.outbox.relay import OutboxRelay, RelaySettings
from edu_infra.outbox.routing import EventRouting, Outgoing
from edu_infra.outbox.seal import Sealer
from edu_infra.outbox.store import (
    ClaimedEvent,
    DeadLetter,
    Failure,
    OutboxEntry,
    OutboxState,
    OutboxStore,
)

__all__ = [
    "ClaimedEvent",
    "DeadLetter",
    "EventRouting",
    "Failure",
    "OutboxEntry",
    "OutboxRelay",
    "OutboxState",
    "OutboxStore",
    "Outgoing",
    "RelaySettings",
    "Sealer",
    "UndeliverableEvent",
    "decode_event",
    "encode_event",
]
