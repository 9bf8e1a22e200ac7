"""In-memory adapters and test doubles: import these in your own tests.

factory = InMemoryUnitOfWorkFactory(clock=ManualClock(), publisher=RecordingPublisher())
async with factory(tenant=org_id, actor=admin_id) as uow:
    ...
"""

from edu_infra.memory.fakes import (
    FastHasher,
    ManualClock,
    RecordingNotifier,
    RecordingPublisher,
    SentMail,
    SequentialIds,
    SequentialTokens,
)
from edu_infra.memory.listener import RecordingCommitListener
from edu_infra.memory.store import InMemoryStore
from edu_infra.memory.uow import InMemoryUnitOfWork, InMemoryUnitOfWorkFactory

__all__ = [
    "FastHasher",
    "InMemoryStore",
    "InMemoryUnitOfWork",
    "InMemoryUnitOfWorkFactory",
    "ManualClock",
    "RecordingCommitListener",
    "RecordingNotifier",
    "RecordingPublisher",
    "SentMail",
    "SequentialIds",
    "SequentialTokens",
]
