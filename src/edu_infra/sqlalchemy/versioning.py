"""edu-core's own Alembic version table, so it can share a database with the host's Alembic.

Alembic records a database's revision in `alembic_version` by default; a host service that
migrates its own tables with Alembic uses that table too, and two trees in one table clash.
edu-core therefore records its revision in `edu_alembic_version` (VERSION_TABLE).

Databases migrated by edu-core 0.1 have its revision in `alembic_version`. Before migrating,
`adopt_legacy_version` moves it over, in the migration's transaction, when it is safe to say
the row is edu-core's: the old table holds exactly one revision, that revision is one of
edu-core's, and edu-core's tables are there. The old table is dropped if that left it empty.
Anything else (e.g. the host's revision in the old table) is left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, inspect, select
from sqlalchemy.engine import Connection

log = logging.getLogger("edu_infra.migrate")

VERSION_TABLE = "edu_alembic_version"
LEGACY_VERSION_TABLE = "alembic_version"
#: A table edu-core's first migration creates: proof the legacy revision is edu-core's.
_OWN_TABLE = "organizations"


def edu_table_names() -> frozenset[str]:
    """Every table edu-core's migrations create: mapped, unmapped (the RLS key, the COPY
    stages) and its version table."""
    from edu_infra.sqlalchemy.migrate import UNMAPPED_TABLES
    from edu_infra.sqlalchemy.tables import metadata

    return frozenset(metadata.tables) | UNMAPPED_TABLES | {VERSION_TABLE}


def skip_edu_tables(name: str | None, type_: str, parent_names: object) -> bool:
    """An Alembic `include_name` hook for the host's env.py: its autogenerate then ignores
    edu-core's tables instead of proposing to drop them."""
    return not (type_ == "table" and name in edu_table_names())


def _version_table(name: str) -> Table:
    """The shape Alembic gives its version table."""
    return Table(
        name,
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name=f"{name}_pkc"),
    )


def adopt_legacy_version(connection: Connection, revisions: Collection[str]) -> str | None:
    """Move edu-core's revision from `alembic_version` to VERSION_TABLE; the revision moved,
    or None when there was nothing (safe) to move."""
    tables = set(inspect(connection).get_table_names())
    if VERSION_TABLE in tables or LEGACY_VERSION_TABLE not in tables or _OWN_TABLE not in tables:
        return None
    legacy = _version_table(LEGACY_VERSION_TABLE)
    rows = list(connection.execute(select(legacy.c.version_num)).scalars())
    if len(rows) != 1 or rows[0] not in revisions:
        return None
    revision = str(rows[0])
    own = _version_table(VERSION_TABLE)
    own.create(connection)
    connection.execute(own.insert().values(version_num=revision))
    connection.execute(legacy.delete().where(legacy.c.version_num == revision))
    legacy.drop(connection)
    log.warning(
        "moved edu-core's revision %s from %s to %s", revision, LEGACY_VERSION_TABLE, VERSION_TABLE
    )
    return revision


__all__ = [
    "LEGACY_VERSION_TABLE",
    "VERSION_TABLE",
    "adopt_legacy_version",
    "edu_table_names",
    "skip_edu_tables",
]
