"""The `UnitOfWork` contract suite, shipped so adapters of your own run the same tests.

Subclass `UnitOfWorkContract` in a test module and give it a `harness` fixture yielding a
`Harness` (your factory wired with `ManualClock`, `RecordingPublisher` and
`RecordingCommitListener`): pytest then runs every contract test against your adapter, as
edu-core runs them against memory, SQLite and PostgreSQL (`tests/contract`).

Needs the `testing` extra (pytest, pytest-asyncio, hypothesis); nothing else in edu_infra
imports this package. A few tests skip where an adapter lacks what they examine (the
outbox relay; a SQLAlchemy `uow.session`; row locks that block, on PostgreSQL), and two
documented limits of edu-core's SQL adapters are strict xfails there only (`WriteEdgesContract`).
"""

from __future__ import annotations

from edu_infra.testing.harness import (
    Harness,
    memory_harness,
    new_content,
    new_org,
    new_profile,
    new_session,
    new_user,
    unique_name,
)
from edu_infra.testing.uow_arguments import ArgumentsContract
from edu_infra.testing.uow_deletes import DeletesContract
from edu_infra.testing.uow_edges_deletes import DeleteEdgesContract
from edu_infra.testing.uow_edges_failures import FailureEdgesContract
from edu_infra.testing.uow_edges_sessions import SessionEdgesContract
from edu_infra.testing.uow_edges_streams import StreamEdgesContract
from edu_infra.testing.uow_edges_writes import WriteEdgesContract
from edu_infra.testing.uow_identity import IdentityContract
from edu_infra.testing.uow_imports import ImportsContract
from edu_infra.testing.uow_outbox import OutboxContract
from edu_infra.testing.uow_parity import ParityContract
from edu_infra.testing.uow_queries import QueriesContract
from edu_infra.testing.uow_read_only import ReadOnlyContract
from edu_infra.testing.uow_reads import ReadsContract
from edu_infra.testing.uow_tally import TallyContract
from edu_infra.testing.uow_transactions import TransactionsContract
from edu_infra.testing.uow_writes import WritesContract


class UnitOfWorkContract(
    ArgumentsContract,
    DeleteEdgesContract,
    FailureEdgesContract,
    IdentityContract,
    ImportsContract,
    OutboxContract,
    ParityContract,
    QueriesContract,
    ReadOnlyContract,
    ReadsContract,
    SessionEdgesContract,
    StreamEdgesContract,
    TallyContract,
    TransactionsContract,
    WriteEdgesContract,
    WritesContract,
):
    """Every behaviour of the `UnitOfWork` port; subclass it and provide `harness`."""


__all__ = [
    "ArgumentsContract",
    "DeleteEdgesContract",
    "DeletesContract",
    "FailureEdgesContract",
    "Harness",
    "IdentityContract",
    "ImportsContract",
    "OutboxContract",
    "ParityContract",
    "QueriesContract",
    "ReadOnlyContract",
    "ReadsContract",
    "SessionEdgesContract",
    "StreamEdgesContract",
    "TallyContract",
    "TransactionsContract",
    "UnitOfWorkContract",
    "WriteEdgesContract",
    "WritesContract",
    "memory_harness",
    "new_content",
    "new_org",
    "new_profile",
    "new_session",
    "new_user",
    "unique_name",
]
