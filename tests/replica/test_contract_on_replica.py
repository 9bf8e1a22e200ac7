"""The shipped contract suite's read-only part (`ReadOnlyContract`) on a read replica: data
written on the primary, read through `read_only=True` units of work that must all have been
served by the hot standby (each waits for the commits before it: the test's own chain)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from edu_infra.memory import ManualClock, RecordingCommitListener, RecordingPublisher
from edu_infra.sqlalchemy import Database, SqlUnitOfWorkFactory
from edu_infra.sqlalchemy.tables import TABLES
from edu_infra.testing import Harness, ReadOnlyContract
from tests.replica.cluster import Cluster
from tests.replica.support import migrate, settings, superuser

pytestmark = pytest.mark.postgres

DATABASE = "edu_contract"
_TRUNCATE = "TRUNCATE " + ", ".join(t.name for t in TABLES.values()) + " CASCADE"


class TestReadOnlyOnReplica(ReadOnlyContract):
    @pytest.fixture
    async def harness(self, cluster: Cluster) -> AsyncIterator[Harness]:
        await migrate(cluster, DATABASE)
        await superuser(cluster, cluster.primary_port, _TRUNCATE, DATABASE)
        clock, publisher, listener = ManualClock(), RecordingPublisher(), RecordingCommitListener()
        database = Database(settings(cluster, DATABASE))
        factory = SqlUnitOfWorkFactory(
            database, clock=clock, publisher=publisher, listeners=[listener]
        )
        try:
            yield Harness("postgres-replica", factory, clock, publisher, listener)
            assert database.replicas is not None
            targets = {target for target, _ in database.replicas.reads}
            assert targets <= {"replica-1"}, database.replicas.reads
        finally:
            await database.dispose()
