"""SQLite connection setup that makes it agree with Python (and PostgreSQL) on text.

SQLite's built-in `lower()` folds ASCII only; `icontains` is defined by
`edu_domain.query.fold`, so each connection gets it as a deterministic `lower`.
"""

from __future__ import annotations

from typing import Any

from edu_domain.query import fold


def _py_lower(value: object) -> object:
    return fold(value) if isinstance(value, str) else value


def install_sqlite_functions(dbapi_connection: Any) -> None:
    """Register the Python functions the query compiler relies on."""
    dbapi_connection.create_function("lower", 1, _py_lower, deterministic=True)


__all__ = ["install_sqlite_functions"]
