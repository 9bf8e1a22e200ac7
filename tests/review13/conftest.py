"""Review 13: the contract suite's `harness` (memory, SQLite, PostgreSQL, PostgreSQL with
row-level security bypassed) reused for `import_rows`, `import_users` and bulk holding."""

from __future__ import annotations

from tests.contract.conftest import harness

__all__ = ["harness"]
