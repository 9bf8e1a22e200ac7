"""One primary + streaming hot standby for the whole test session (`cluster.py`); the
databases and factories on it are in `support.py`. Under pytest-xdist each worker that runs
a test of this folder is a session of its own, with its own cluster."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import services_required
from tests.replica.cluster import Cluster, primary_and_standby, server_binaries


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    if server_binaries() is None:
        reason = "PostgreSQL server binaries (initdb, pg_basebackup) are not installed"
        if services_required():
            pytest.fail(f"EDU_REQUIRE_SERVICES=1 but {reason}", pytrace=False)
        pytest.skip(f"SKIPPED LOUDLY: {reason}")
    with primary_and_standby() as started:
        yield started
