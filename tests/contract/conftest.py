"""The `harness` fixture: every contract test runs once per unit-of-work adapter.

Memory always runs. SQLite and PostgreSQL (twice: as the application role, and through a
member of it that bypasses row-level security, so the unit of work's own tenant filter is
proven alone) join as soon as `tests/sql_harness.py` exists;
PostgreSQL skips loudly (or fails under EDU_REQUIRE_SERVICES=1) when its server is absent.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import cast

import pytest

from edu_infra.testing.harness import Harness, memory_harness

_HAS_SQL = importlib.util.find_spec("tests.sql_harness") is not None
ADAPTERS = [
    pytest.param("memory", id="memory"),
    *(
        [
            pytest.param("sqlite", id="sqlite"),
            pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
            # row-level security bypassed: the unit of work's tenant filter alone
            pytest.param(
                "postgres-app-filter", id="postgres-app-filter", marks=pytest.mark.postgres
            ),
        ]
        if _HAS_SQL
        else []
    ),
]


def _open(name: str, request: pytest.FixtureRequest) -> AbstractAsyncContextManager[Harness]:
    if name == "memory":
        return memory_harness()
    sql = importlib.import_module("tests.sql_harness")
    if name == "sqlite":
        return cast("AbstractAsyncContextManager[Harness]", sql.sqlite_harness())
    url: str = request.getfixturevalue("postgres_url")
    if name == "postgres-app-filter":
        return cast("AbstractAsyncContextManager[Harness]", sql.postgres_app_filter_harness(url))
    return cast("AbstractAsyncContextManager[Harness]", sql.postgres_harness(url))


@pytest.fixture(params=ADAPTERS)
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    async with _open(request.param, request) as opened:
        yield opened
