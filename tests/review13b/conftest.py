"""Review 13b: performance round 3 attacked (pool, rows to entities, text rules, decode memo,
garbage per unit of work); fixtures of the contract and integration suites reused."""

from __future__ import annotations

from tests.contract.conftest import harness
from tests.integration.conftest import one_conn, pg, pg_db, pg_harness

__all__ = ["harness", "one_conn", "pg", "pg_db", "pg_harness"]
