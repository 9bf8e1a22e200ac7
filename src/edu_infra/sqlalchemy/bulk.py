"""Bulk inserts by the fastest path each dialect offers.

PostgreSQL: binary COPY (asyncpg `copy_records_to_table`) on the unit of work's own
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

from collections.abc import Callable, Sequence
from datetime import UTC
from enum import Enum
from typing import Any

from sqlalchemy import JSON
from sqlalchemy.engine import Dialect

from edu_domain.model import Entity
from edu_infra.sqlalchemy.engine import dump_json
from edu_infra.sqlalchemy.mapping import table_of
from edu_infra.sqlalchemy.types import EnumText, UtcDateTime

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
    columns = [c.name for c in table.columns]
    processors = [(c.name, _processor(c.type, dialect)) for c in table.columns]
    records = [_record(processors, entity) for entity in entities]
    await driver.copy_records_to_table(
        STAGE_PREFIX + table.name, records=records, columns=columns, schema_name=schema
    )
    # one round trip: this transaction's staged rows move under the policies, as the owner
    await driver.fetchval(f'SELECT "{schema}".edu_stage_move($1)', table.name)


class RowInsert:
    """A prepared single-row INSERT of one table: its SQL and how to read a row off an entity.

    `uow.add` on PostgreSQL sends it on the driver (one round trip, no ORM flush); the
    values are read as for COPY.
    """

    def __init__(self, cls: type[Entity], dialect: Dialect) -> None:
        table = table_of(cls)
        quote = dialect.identifier_preparer.quote
        names = ", ".join(quote(c.name) for c in table.columns)
        places = ", ".join(f"${i}" for i in range(1, len(table.columns) + 1))
        self.sql = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({places})"  # noqa: S608 - schema names
        self._processors = [(c.name, _processor(c.type, dialect)) for c in table.columns]

    def args(self, entity: Entity) -> tuple[Any, ...]:
        return _record(self._processors, entity)


class RowUpdate:
    """A prepared versioned UPDATE of some columns of one table (the ORM flush's statement).

    `WHERE id AND organization_id AND version = <old>`: a row changed meanwhile updates
    nothing, which the unit of work reports as a ConcurrencyConflict.
    """

    def __init__(self, cls: type[Entity], columns: Sequence[str], dialect: Dialect) -> None:
        table = table_of(cls)
        quote = dialect.identifier_preparer.quote
        sets = [f"{quote(name)} = ${i}" for i, name in enumerate(columns, start=1)]
        n = len(columns)
        tenant = cls.__tenant_field__
        sets.append(f"version = ${n + 1}")
        where = f"id = ${n + 2} AND {quote(tenant)} = ${n + 3} AND version = ${n + 4}"
        self.sql = f"UPDATE {quote(table.name)} SET {', '.join(sets)} WHERE {where}"  # noqa: S608 - schema names
        self._processors = [(name, _processor(table.c[name].type, dialect)) for name in columns]
        self._tenant = tenant

    def args(self, entity: Entity, old_version: int) -> tuple[Any, ...]:
        values = entity.__dict__
        return (
            *_record(self._processors, entity),
            old_version + 1,
            values["id"],
            values[self._tenant],
            old_version,
        )


def _record(
    processors: Sequence[tuple[str, Callable[[Any], Any] | None]], entity: Entity
) -> tuple[Any, ...]:
    """One COPY row: values read from the instance dict (where a new entity keeps them all)."""
    values = entity.__dict__
    return tuple(
        (value if process is None or value is None else process(value))
        for name, process in processors
        for value in (values[name] if name in values else getattr(entity, name),)
    )


def _processor(type_: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    """How a column's value is written for COPY (None: as it is; None values pass as NULL)."""
    impl = type_.dialect_impl(dialect)
    if isinstance(impl, JSON) or isinstance(getattr(impl, "impl", None), JSON):
        return lambda value: dump_json(dict(value))
    if isinstance(type_, EnumText):
        return _enum_value
    if isinstance(type_, UtcDateTime):
        slow = type_.process_bind_param
        return lambda value: (
            value if value.tzinfo is UTC else slow(value, dialect)  # asyncpg wants aware UTC
        )
    process = getattr(type_, "process_bind_param", None)
    if process is not None:
        return lambda value: process(value, dialect)
    return None


def _enum_value(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


__all__ = ["RowInsert", "RowUpdate", "copy_insert"]
