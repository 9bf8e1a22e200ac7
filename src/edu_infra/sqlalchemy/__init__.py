"""The SQLAlchemy adapter: PostgreSQL (asyncpg) in production, SQLite (aiosqlite) embedded.

    database = Database(DatabaseSettings(url="postgresql+asyncpg://edu_app@db/edu", rls_key=key))
    uow_factory = SqlUnitOfWorkFactory(database, publisher=..., listeners=[...])
    async with uow_factory(tenant=org_id, actor=user_id) as uow: ...

Schema changes go through `edu_infra.sqlalchemy.migrate` (Alembic, shipped in
`edu_infra.migrations`), never `metadata.create_all` in production.
"""

from edu_infra.sqlalchemy.engine import Database, DatabaseSettings
from edu_infra.sqlalchemy.factory import SqlUnitOfWorkFactory
from edu_infra.sqlalchemy.mapping import clear_mappers, start_mappers
from edu_infra.sqlalchemy.outbox import SqlOutbox
from edu_infra.sqlalchemy.retry import retrying
from edu_infra.sqlalchemy.tables import TABLES, metadata
from edu_infra.sqlalchemy.uow import SqlUnitOfWork

__all__ = [
    "TABLES",
    "Database",
    "DatabaseSettings",
    "SqlOutbox",
    "SqlUnitOfWork",
    "SqlUnitOfWorkFactory",
    "clear_mappers",
    "metadata",
    "retrying",
    "start_mappers",
]
