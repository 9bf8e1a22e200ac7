"""Alembic environment: runs migrations on the async engine of the given URL.

The URL comes from the Config (`sqlalchemy.url`, set by `edu_infra.sqlalchemy.migrate`)
or from `EDU_DATABASE_URL`. `app_role` (Config attribute or `-x app_role=...`) is the
PostgreSQL role that row-level security applies to and that receives the grants. The
revision is recorded in edu-core's own version table (`edu_alembic_version`), so a host's
Alembic migrations can share the database (see `edu_infra.sqlalchemy.versioning`).
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from edu_infra.sqlalchemy.migrate import include_name, include_object_for
from edu_infra.sqlalchemy.tables import metadata
from edu_infra.sqlalchemy.versioning import (
    VERSION_TABLE,
    adopt_legacy_version,
    check_no_conflict,
)

config = context.config
target_metadata = metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("EDU_DATABASE_URL")
    if not url:
        raise RuntimeError("no database URL: set sqlalchemy.url or EDU_DATABASE_URL")
    return url


def _run(connection: Connection) -> None:
    adopt_legacy_version(connection, {rev.revision for rev in context.script.walk_revisions()})
    if context.get_revision_argument() not in (None, "base"):  # an upgrade: nothing in the way?
        check_no_conflict(connection)
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
        include_object=include_object_for(connection.dialect.name),
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_url(), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def run_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        version_table=VERSION_TABLE,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_async())
