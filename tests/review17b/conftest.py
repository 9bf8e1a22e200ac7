"""Review 17b: the contract suite's `harness` (memory, SQLite, PostgreSQL) and the replica
tests' session cluster (a primary + streaming hot standby, `tests/replica/cluster.py`) reused."""

from __future__ import annotations

from tests.contract.conftest import harness
from tests.replica.conftest import cluster

__all__ = ["cluster", "harness"]
