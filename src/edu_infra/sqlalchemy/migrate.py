"""Apply the shipped Alembic migrations programmatically (`make migrate`, the demo, tests).

`upgrade`/`downgrade` are synchronous (they run their own event loop); inside a running
loop use `upgrade_async`/`downgrade_async`, which run Alembic on a connection of an async
engine. On PostgreSQL, run migrations as the role that owns the tables; `app_role` names
the role the application connects as (granted DML, subject to row-level security), and
`rls_key` (EDU_RLS_KEY) is stored for the row-level security functions, in the same
transaction: running it again with another key rotates it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from edu_infra.sqlalchemy.pg_copy import STAGE_PREFIX
from edu_infra.sqlalchemy.rls import KEY_TABLE, store_key
from edu_infra.sqlalchemy.tables import TABLES

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
DEFAULT_APP_ROLE = os.environ.get("EDU_DATABASE_APP_ROLE", "edu_app")


#: Tables of the migrations that no entity maps (the RLS key material, the COPY stages):
#: not schema drift.
UNMAPPED_TABLES = frozenset({KEY_TABLE, *(STAGE_PREFIX + t.name for t in TABLES.values())})


def include_object_for(dialect: str) -> Callable[..., bool]:
    """Alembic `include_object`: skip schema items meant for another dialect (`ddl_if`),
    and the unmapped tables of the migrations."""

    def include(obj: object, name: str | None, kind: str, reflected: bool, _other: object) -> bool:
        if kind == "table" and reflected and name in UNMAPPED_TABLES:
            return False
        condition = getattr(obj, "_ddl_if", None)
        wanted = getattr(condition, "dialect", None)
        return wanted is None or wanted == dialect

    return include


def include_name(name: str | None, kind: str, _parents: object) -> bool:
    """Alembic `include_name`: leave the unmapped tables (key material, COPY stages) out of
    autogenerate comparisons."""
    return not (kind == "table" and name in UNMAPPED_TABLES)


def alembic_config(url: str | None = None, *, app_role: str | None = None) -> Config:
    """An Alembic Config pointing at the shipped migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["app_role"] = app_role or DEFAULT_APP_ROLE
    return config


def upgrade(
    url: str, *, revision: str = "head", app_role: str | None = None, rls_key: str | None = None
) -> None:
    asyncio.run(upgrade_async(url, revision=revision, app_role=app_role, rls_key=rls_key))


def downgrade(url: str, *, revision: str = "base", app_role: str | None = None) -> None:
    asyncio.run(downgrade_async(url, revision=revision, app_role=app_role))


async def upgrade_async(
    url: str, *, revision: str = "head", app_role: str | None = None, rls_key: str | None = None
) -> None:
    """Migrate to `revision`; on PostgreSQL, then store `rls_key` if given."""
    await _run(url, app_role, lambda config: command.upgrade(config, revision), rls_key)


async def downgrade_async(url: str, *, revision: str = "base", app_role: str | None = None) -> None:
    await _run(url, app_role, lambda config: command.downgrade(config, revision))


async def _run(url: str, app_role: str | None, action: object, rls_key: str | None = None) -> None:
    engine = create_async_engine(url, poolclass=NullPool, hide_parameters=True)
    try:
        async with engine.connect() as connection:

            def run(sync_connection: Connection) -> None:
                config = alembic_config(url, app_role=app_role)
                config.attributes["connection"] = sync_connection
                action(config)  # type: ignore[operator]
                if rls_key is not None and sync_connection.dialect.name == "postgresql":
                    store_key(sync_connection, rls_key)

            await connection.run_sync(run)
            await connection.commit()
    finally:
        await engine.dispose()


__all__ = [
    "alembic_config",
    "downgrade",
    "downgrade_async",
    "include_name",
    "include_object_for",
    "main",
    "upgrade",
    "upgrade_async",
]


def main(argv: list[str] | None = None) -> int:
    """`python -m edu_infra.sqlalchemy.migrate [upgrade|downgrade] [revision]` on EDU_DATABASE_URL."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    action = args[0] if args else "upgrade"
    url = os.environ.get("EDU_DATABASE_URL")
    if action not in ("upgrade", "downgrade") or not url:
        print(
            "usage: EDU_DATABASE_URL=... python -m edu_infra.sqlalchemy.migrate "
            "[upgrade|downgrade] [revision]",
            file=sys.stderr,
        )
        return 2
    if action == "upgrade":
        revision = args[1] if len(args) > 1 else "head"
        upgrade(url, revision=revision, rls_key=os.environ.get("EDU_RLS_KEY"))
    else:
        downgrade(url, revision=args[1] if len(args) > 1 else "base")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
