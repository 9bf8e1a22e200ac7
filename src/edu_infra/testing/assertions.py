"""Checks several contract modules share."""

from __future__ import annotations

#: what gives a driver error away: SQL text, or the name of a database library
SQL_WORDS = ("SELECT", "INSERT", "UPDATE ", "DELETE", "[SQL", "sqlalchemy", "asyncpg", "sqlite3")


def no_sql(error: BaseException) -> None:
    """A caller's error carries no SQL and names no driver (driver errors are translated)."""
    text = f"{error} {error!r}"
    assert not any(word in text for word in SQL_WORDS), text
