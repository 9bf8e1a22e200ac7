"""What an operator is told when the database is not ready: one line, the cause and the fix.

`explain` turns an exception from connecting or migrating into such a line (no traceback);
`check_database` is `edu health`'s probe: it never creates a SQLite file, and tells an
unreachable server, a refused login, a missing database and an unmigrated schema apart.
"""

from __future__ import annotations

import re
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from attrs import frozen

from edu_infra.settings import redact_url

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


@frozen
class Verdict:
    ok: bool
    line: str


_WRAPPER = re.compile(r"^\([\w.]+\)\s*")


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error, what it wraps (`orig`), and its causes, each once."""
    seen: set[int] = set()
    todo = [error]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend(
            e
            for e in (getattr(current, "orig", None), current.__cause__, current.__context__)
            if isinstance(e, BaseException)
        )


def _first_line(error: BaseException) -> str:
    """The message's first line, without SQLAlchemy's `(driver.ExceptionClass) ` prefix."""
    text = str(error).strip().splitlines()
    return _WRAPPER.sub("", text[0]) if text else type(error).__name__


def explain(
    error: BaseException, url: str, url_setting: str, *, migrating: bool = False
) -> str | None:
    """One line naming the cause and the setting to fix (`url_setting`, the variable `url`
    came from), or None if `error` is not one of the known operator problems."""
    where = redact_url(url)
    for cause in _chain(error):
        sqlstate = str(getattr(cause, "sqlstate", "") or "")
        message = _first_line(cause)
        if sqlstate == "42501" or "permission denied" in message.lower():
            if not migrating:
                return f"permission denied on {where}: {message}; check the role in {url_setting}"
            return (
                f"permission denied on {where}: {message}. Migrations must run as the role that"
                " owns the tables: "
                + (
                    "set EDU_MIGRATION_DATABASE_URL to that role's URL"
                    if url_setting == "EDU_DATABASE_URL"
                    else f"check the role in {url_setting}"
                )
            )
        if sqlstate in ("28P01", "28000"):
            return f"the database refused the login ({message}): check the user and password in {url_setting}"
        if sqlstate == "3D000":
            return f"{message}: create it, or fix the database name in {url_setting}"
        if sqlstate == "42P01" or "42P01" in message or "no such table" in message:
            return f"the database at {where} is not migrated ({message}): run `edu migrate`"
        if isinstance(cause, socket.gaierror | ConnectionError | TimeoutError) or (
            isinstance(cause, OSError) and "connect" in message.lower()
        ):
            return f"cannot reach the database at {where} ({message}): is the server running? check {url_setting}"
        if type(cause).__name__ == "SchemaConflict":  # edu_infra.sqlalchemy.versioning's
            return message
        if isinstance(cause, sqlite3.OperationalError) and "unable to open" in message:
            return f"cannot open the SQLite file of {url_setting} ({where}): {message}"
    return None


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database)


async def check_database(database: object, url: str) -> Verdict:
    """Reachable, migrated to edu-core's head, and edu-core's tables there? Never creates a
    SQLite file."""
    from edu_infra.sqlalchemy.engine import Database

    assert isinstance(database, Database)
    path = sqlite_file(url)
    if path is not None and path.is_dir():
        return Verdict(
            False,
            f"NOT A FILE ({path.resolve()} is a directory; EDU_DATABASE_URL must name a"
            " SQLite file)",
        )
    if path is not None and not path.is_file():
        return Verdict(
            False,
            f"MISSING (no SQLite file at {path.resolve()}; `edu migrate` creates it in an existing folder)",
        )
    head = _head()
    try:
        async with database.engine.connect() as connection:
            return await connection.run_sync(lambda c: _schema_verdict(c, head))
    except Exception as error:
        line = explain(error, url, "EDU_DATABASE_URL")
        return Verdict(False, f"UNAVAILABLE ({line or _first_line(error)})")


def _schema_verdict(connection: Connection, head: str | None) -> Verdict:
    from sqlalchemy import inspect

    from edu_infra.sqlalchemy.tables import metadata
    from edu_infra.sqlalchemy.versioning import (
        LEGACY_VERSION_TABLE,
        VERSION_TABLE,
        legacy_revision,
        revision_of,
        shape_problems,
    )

    tables = set(inspect(connection).get_table_names())
    if VERSION_TABLE not in tables:
        legacy = legacy_revision(connection)
        if legacy is not None:
            return Verdict(
                False,
                f"OLD VERSION TABLE (edu-core's revision {legacy} is in {LEGACY_VERSION_TABLE}):"
                f" run `edu migrate` to move it to {VERSION_TABLE}",
            )
        clash = sorted(set(metadata.tables) & tables)
        if clash:
            return Verdict(
                False,
                f"CONFLICT (table {', '.join(clash)} exists but is not edu-core's:"
                f" {VERSION_TABLE} records no revision; give edu-core its own database or"
                " schema)",
            )
        return Verdict(False, "NOT MIGRATED (no edu-core tables): run `edu migrate`")
    problems = shape_problems(connection, str(head))  # before a read that may abort (PG)
    try:
        revision = revision_of(connection)
    except Exception:  # the application role may not read it: the tables alone tell
        revision = head
    if revision != head:
        return Verdict(
            False, f"BEHIND (at revision {revision}, edu-core needs {head}): run `edu migrate`"
        )
    if problems:
        return Verdict(
            False,
            f"INCOMPLETE ({VERSION_TABLE} says {revision}, but {'; '.join(problems[:3])}):"
            " restore the tables or migrate a fresh database",
        )
    return Verdict(True, "ok")


def _head() -> str | None:
    from alembic.script import ScriptDirectory

    from edu_infra.sqlalchemy.migrate import alembic_config

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


__all__ = ["Verdict", "check_database", "explain", "sqlite_file"]
