"""The shipped `UnitOfWork` contract suite (`edu_infra.testing`) on memory, SQLite and
PostgreSQL: the `harness` fixture of `conftest.py` runs every test once per adapter."""

from __future__ import annotations

from edu_infra.testing import UnitOfWorkContract


class TestUnitOfWork(UnitOfWorkContract):
    """Every contract test, once per adapter."""
