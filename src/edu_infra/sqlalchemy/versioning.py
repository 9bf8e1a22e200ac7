"""edu-core's own Alembic version table, so it can share a database with the host's Alembic.

Alembic records a database's revision in `alembic_version` by default; a host service that
migrates its own tables with Alembic uses that table too, and two trees in one table clash.
edu-core therefore records its revision in `edu_alembic_version` (VERSION_TABLE).

Databases migrated by edu-core 0.1 have its revision in `alembic_version`. Before migrating,
`adopt_legacy_version` moves it over, in the migration's transaction, only on strong proof
that the row is edu-core's: the old table holds exactly one revision, one of those edu-core
0.1 wrote (a host's tree may use the same ids: "0001"), and every table edu-core's
migrations create up to that revision is there with edu-core's key columns. The old table is
dropped only when that left it empty. Anything else is left alone, and migrating proceeds
into `edu_alembic_version`; if a table of edu-core's name is then in the way (the host's own
`organizations`), `check_no_conflict` stops it with a one-line `SchemaConflict` instead of a
half-applied migration.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, inspect, select
from sqlalchemy import func as _func
from sqlalchemy.engine import Connection

log = logging.getLogger("edu_infra.migrate")

VERSION_TABLE = "edu_alembic_version"
LEGACY_VERSION_TABLE = "alembic_version"
#: The revisions edu-core 0.1 could leave in LEGACY_VERSION_TABLE, oldest first.
LEGACY_REVISIONS = ("0001", "0002", "0003")
#: The migration that creates `outbox_events`.
OUTBOX_REVISION = 5


class SchemaConflict(RuntimeError):
    """Tables of edu-core's names are in the database, but not as edu-core's: migrating
    would fail half-way. The message is one line for the operator."""


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


def _key_columns(table: Table) -> frozenset[str]:
    """Columns that identify edu-core's shape of a table: its primary and foreign keys."""
    keys = {c.name for c in table.primary_key.columns}
    keys.update(fk.parent.name for fk in table.foreign_keys)
    return frozenset(keys)


def expected_tables(revision: str, dialect: str) -> dict[str, frozenset[str]]:
    """The tables edu-core's migrations create up to `revision` on `dialect`, each with the
    key columns it must have: 0001 the mapped tables, on PostgreSQL 0002 the RLS key and
    0003 the COPY stages (LIKE their tables), 0005 the outbox; a later revision needs at
    least all of them."""
    from edu_infra.sqlalchemy.pg_copy import STAGE_PREFIX
    from edu_infra.sqlalchemy.rls import KEY_TABLE
    from edu_infra.sqlalchemy.tables import TABLES, outbox_events

    mapped = {table.name: _key_columns(table) for table in TABLES.values()}
    expected = dict(mapped)
    known = revision in LEGACY_REVISIONS
    step = LEGACY_REVISIONS.index(revision) if known else len(LEGACY_REVISIONS) - 1
    if dialect == "postgresql" and step >= 1:
        expected[KEY_TABLE] = frozenset({"id", "ipad", "opad"})
    if dialect == "postgresql" and step >= 2:
        expected.update({STAGE_PREFIX + name: keys for name, keys in mapped.items()})
    if not revision.isdigit() or int(revision) >= OUTBOX_REVISION:
        expected[outbox_events.name] = _key_columns(outbox_events)
    return expected


def shape_problems(connection: Connection, revision: str) -> list[str]:
    """What keeps the database from being edu-core's schema at `revision` (empty: it is)."""
    inspector = inspect(connection)
    tables = set(inspector.get_table_names())
    problems = []
    for name, keys in sorted(expected_tables(revision, connection.dialect.name).items()):
        if name not in tables:
            problems.append(f"no table {name}")
            continue
        columns = {column["name"] for column in inspector.get_columns(name)}
        if missing := sorted(keys - columns):
            problems.append(f"table {name} lacks {', '.join(missing)}")
    return problems


def legacy_revision(connection: Connection) -> str | None:
    """edu-core 0.1's revision in LEGACY_VERSION_TABLE, on strong proof (see the module's
    docstring); None when VERSION_TABLE exists or the row is not provably edu-core's."""
    tables = set(inspect(connection).get_table_names())
    if VERSION_TABLE in tables or LEGACY_VERSION_TABLE not in tables:
        return None
    legacy = _version_table(LEGACY_VERSION_TABLE)
    rows = list(connection.execute(select(legacy.c.version_num).limit(2)).scalars())
    if len(rows) != 1 or rows[0] not in LEGACY_REVISIONS:
        return None
    revision = str(rows[0])
    problems = shape_problems(connection, revision)
    if problems:
        log.warning(
            "%s holds revision %s, but not edu-core's: its tables are not there (%s)",
            LEGACY_VERSION_TABLE,
            revision,
            "; ".join(problems[:3]),
        )
        return None
    return revision


def revision_of(connection: Connection) -> str | None:
    """edu-core's revision recorded in VERSION_TABLE (None: none recorded)."""
    own = _version_table(VERSION_TABLE)
    found = connection.scalar(select(_func.max(own.c.version_num)))
    return None if found is None else str(found)


def adopt_legacy_version(connection: Connection, revisions: Collection[str] = ()) -> str | None:
    """Move edu-core's revision from `alembic_version` to VERSION_TABLE; the revision moved,
    or None when it is not provably edu-core's (then nothing is changed)."""
    revision = legacy_revision(connection)
    if revision is None or (revisions and revision not in revisions):
        return None
    legacy = _version_table(LEGACY_VERSION_TABLE)
    own = _version_table(VERSION_TABLE)
    own.create(connection)
    connection.execute(own.insert().values(version_num=revision))
    connection.execute(legacy.delete().where(legacy.c.version_num == revision))
    if connection.execute(select(legacy.c.version_num).limit(1)).first() is None:
        legacy.drop(connection)
    log.warning(
        "moved edu-core's revision %s from %s to %s", revision, LEGACY_VERSION_TABLE, VERSION_TABLE
    )
    return revision


def check_no_conflict(connection: Connection) -> None:
    """SchemaConflict when edu-core has no revision here (VERSION_TABLE absent) but tables of
    its names exist: its first migration would fail on them, half-way."""
    tables = set(inspect(connection).get_table_names())
    if VERSION_TABLE in tables:
        return
    from edu_infra.sqlalchemy.tables import metadata

    clash = sorted(set(metadata.tables) & tables)
    if clash:
        where = connection.engine.url.render_as_string(hide_password=True)
        raise SchemaConflict(
            f"cannot migrate {where}: it already has table{'s' if len(clash) > 1 else ''}"
            f" {', '.join(clash)} that edu-core did not record in {VERSION_TABLE} (another"
            " application's tables, or an alembic_version row that is not provably"
            " edu-core's): give edu-core its own database or schema, or rename those tables"
        )


__all__ = [
    "LEGACY_REVISIONS",
    "LEGACY_VERSION_TABLE",
    "VERSION_TABLE",
    "SchemaConflict",
    "adopt_legacy_version",
    "check_no_conflict",
    "edu_table_names",
    "expected_tables",
    "legacy_revision",
    "revision_of",
    "shape_problems",
    "skip_edu_tables",
]
