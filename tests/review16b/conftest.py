"""Review 16b: the contract suite's `harness` fixture (memory, SQLite, PostgreSQL) reused."""

from __future__ import annotations

from tests.contract.conftest import harness

__all__ = ["harness"]
