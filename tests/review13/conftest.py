"""Review 13: the contract suite's `harness` (memory, SQLite, PostgreSQL, PostgreSQL with
row-level security bypassed) reused for `import_rows`, `import_users` and bulk holding."""

from __future__ import annotations

from tests.contract.conftest import harness
from tests.integration.conftest import pg, pg_db, pg_harness

__all__ = ["harness", "pg", "pg_db", "pg_harness"]
