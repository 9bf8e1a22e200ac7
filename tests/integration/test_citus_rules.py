"""The rules that keep the door to Citus open, checked on a migrated PostgreSQL database
(Citus itself is not installable here; README "Running on Citus" says which rules yield
to the tenant boundary and why).

Kept: policies read no table (only the verdicts `edu_tenant()` and `edu_unscoped()`); the policy
functions read no table but the key table (plain, copied to every node); `organizations`
is shaped as a reference table (its only unique key besides its id is global).
"""

from __future__ import annotations

import re

import asyncpg
import pytest

from edu_infra.sqlalchemy.tables import metadata
from tests.sql_harness import PostgresDatabase, postgres_database

pytestmark = pytest.mark.postgres

#: A relation after FROM or JOIN (a name followed by "(" is a function: not a table).
_TABLE_WORDS = re.compile(r"\b(?:FROM|JOIN)\s+([A-Za-z_][A-Za-z0-9_.]*)\b(?!\s*\()", re.IGNORECASE)


@pytest.fixture
async def owner(postgres_url: str) -> asyncpg.Connection:
    database: PostgresDatabase = await postgres_database(postgres_url)
    conn = await asyncpg.connect(database.dsn(database.owner_url))
    yield conn
    await conn.close()


async def test_policies_read_no_table_and_verify_once_per_statement(
    owner: asyncpg.Connection,
) -> None:
    policies = await owner.fetch("SELECT tablename, qual, with_check FROM pg_policies")
    assert {p["tablename"] for p in policies} == set(metadata.tables)  # the outbox's too
    for policy in policies:
        for expression in (policy["qual"], policy["with_check"]):
            assert _TABLE_WORDS.findall(expression) == [], expression
            assert expression.count("edu_tenant()") == 1
            assert expression.count("edu_unscoped()") == 1
            assert "current_setting" not in expression  # settings only through a verdict


async def test_policy_functions_read_only_the_key_table(owner: asyncpg.Connection) -> None:
    functions = await owner.fetch(
        "SELECT proname, prosrc, prosecdef, proconfig FROM pg_proc"
        " WHERE proname IN ('edu_enter', 'edu_verified', 'edu_tenant', 'edu_unscoped')"
    )
    assert {f["proname"] for f in functions} == {
        "edu_enter", "edu_verified", "edu_tenant", "edu_unscoped"
    }  # fmt: skip
    for function in functions:
        read = {name.split(".")[-1] for name in _TABLE_WORDS.findall(function["prosrc"])}
        assert read <= {"edu_rls_key"}, (function["proname"], read)
        assert function["prosecdef"], "runs as the owner: the key stays unreadable"
        assert "search_path=pg_catalog, pg_temp" in function["proconfig"]


async def test_organizations_unique_keys_are_global_as_a_reference_table_needs(
    owner: asyncpg.Connection,
) -> None:
    indexes = await owner.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'organizations'"
        " AND indexdef LIKE 'CREATE UNIQUE%'"
    )
    assert {i["indexname"] for i in indexes} == {"pk_organizations", "uq_organizations_slug"}
    foreign = await owner.fetch(
        "SELECT conname FROM pg_constraint WHERE contype = 'f'"
        " AND conrelid = 'organizations'::regclass"
    )
    assert foreign == []  # a reference table points nowhere
