"""Bulk inserts on PostgreSQL: binary COPY (asyncpg `copy_records_to_table`) on the unit of work's own
connection, inside its transaction. PostgreSQL refuses `COPY FROM` into a table with
row-level security for a role it applies to, so the rows are copied into the table's
UNLOGGED stage (migration 0003: the application role may only INSERT its data columns;
a hidden column records the inserting transaction) and `edu_stage_move(table)` moves this
transaction's rows with one `INSERT ... SELECT` as the owner, which the RLS `WITH CHECK`
policy and every constraint still check. No temporary table is needed, so the
application role has no TEMP privilege. Constraint errors surface as asyncpg exceptions,
translated like any other.

The unit of work then marks the inserted objects persistent (their identity key, no
SELECT), exactly as if a query had loaded them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Dialect

from edu_domain.model import Entity
from edu_infra.sqlalchemy.mapping import table_of
from edu_infra.sqlalchemy.row_writes import column_writer, records_of, row_values

#: The UNLOGGED stage of each table (migration 0003): COPY lands there, then moves.
STAGE_PREFIX = "edu_stage_"


async def copy_insert(
    driver: Any, dialect: Dialect, entities: Sequence[Entity], *, schema: str
) -> None:
    """Insert `entities` (all of one class, stamped, version set) by COPY on `driver`
    (the unit of work's asyncpg connection, inside its transaction)."""
    if not entities:
        return
    table = table_of(type(entities[0]))
    processors = [(c.name, column_writer(c.type, dialect)) for c in table.columns]
    records = [row_values(processors, entity) for entity in entities]
    await copy_records(driver, table, records, schema=schema)


async def copy_rows(
    driver: Any,
    dialect: Dialect,
    cls: type[Entity],
    rows: Sequence[Mapping[str, Any]],
    *,
    schema: str,
) -> None:
    """`copy_insert` for plain rows (`UnitOfWork.import_rows`: checked, stamped values of
    every field, no entity)."""
    table = table_of(cls)
    writers = [(c.name, column_writer(c.type, dialect)) for c in table.columns]
    await copy_records(driver, table, records_of(writers, rows), schema=schema)


async def copy_records(
    driver: Any, table: Table, records: Sequence[tuple[Any, ...]], *, schema: str
) -> None:
    """COPY `records` (one value per column of `table`, in order) into the table's stage,
    then move them under the table's policies and constraints."""
    columns = [c.name for c in table.columns]
    await driver.copy_records_to_table(
        STAGE_PREFIX + table.name, records=records, columns=columns, schema_name=schema
    )
    # one round trip: this transaction's staged rows move under the policies, as the owner
    await driver.fetchval(f'SELECT "{schema}".edu_stage_move($1)', table.name)


__all__ = ["STAGE_PREFIX", "copy_insert", "copy_records", "copy_rows"]
