"""In-memory adapters and test doubles: import these in your own tests.

`InMemoryCache` (the Cache port in a dict) needs the `codec` extra; the rest only attrs.

factory = InMemoryUnitOfWorkFactory(clock=ManualClock(), publisher=RecordingPublisher())
async with factory(tenant=org_id, actor=admin_id) as uow:
    ...
"""

from typing import Any

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
from edu_infra.memory.outbox import InMemoryOutbox
from edu_infra.memory.store import InMemoryStore
from edu_infra.memory.uow import InMemoryUnitOfWork, InMemoryUnitOfWorkFactory

try:
    from edu_infra.memory.cache import InMemoryCache
except ModuleNotFoundError as error:  # the codec extra (orjson, cattrs) is not installed
    _cache_import_error = error

    def __getattr__(name: str) -> Any:
        if name == "InMemoryCache":
            raise ImportError(
                "InMemoryCache needs the 'codec' extra: pip install 'edu-core[codec]'"
            ) from _cache_import_error
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FastHasher",
    "InMemoryCache",
    "InMemoryOutbox",
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
