"""Opens SQL units of work: one per task or request, never shared."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import text

from edu_domain.errors import DomainError
from edu_domain.ports import Clock, CommitListener, EventPublisher
from edu_domain.uow_checks import check_actor, check_flag, check_tenant
from edu_infra.consistency import ConsistencyToken
from edu_infra.outbox import EventRouting, OutboxRelay, RelaySettings
from edu_infra.outbox.seal import Sealer
from edu_infra.sqlalchemy.changes import ChangeLog
from edu_infra.sqlalchemy.compiler import QueryCompiler
from edu_infra.sqlalchemy.connection import TransactionSettings, UowConnection
from edu_infra.sqlalchemy.engine import Database, vouch_after_one_transaction
from edu_infra.sqlalchemy.errors import is_driver_error
from edu_infra.sqlalchemy.identity import Identities
from edu_infra.sqlalchemy.mapping import start_mappers
from edu_infra.sqlalchemy.orm_rows import OrmRows
from edu_infra.sqlalchemy.outbox import SqlOutbox
from edu_infra.sqlalchemy.pg_rows import PgRows
from edu_infra.sqlalchemy.pg_statements import PgStatements
from edu_infra.sqlalchemy.routed_rows import RoutedRows
from edu_infra.sqlalchemy.routing import ReadRoute
from edu_infra.sqlalchemy.rows import RowPath
from edu_infra.sqlalchemy.uow import SqlUnitOfWork
from edu_infra.system import SystemClock

log = logging.getLogger("edu_infra")

#: The privileges that would let raw SQL create objects edu-core's statements could resolve
#: to: TEMP and CREATE on the database, CREATE on edu-core's schema or any in the role's path.
_PRIVILEGES = """
SELECT quote_ident(current_database()),
       has_database_privilege(current_database(), 'TEMP'),
       has_database_privilege(current_database(), 'CREATE'),
       ARRAY(SELECT DISTINCT quote_ident(s)
               FROM unnest(array_append(current_schemas(false), CAST(:schema AS name))) s
              WHERE has_schema_privilege(s, 'CREATE'))
"""


class SqlUnitOfWorkFactory:
    """`edu_domain.ports.UnitOfWorkFactory` over a `Database` (maps the entities on first use).

    With a publisher, committed events go through the `outbox_events` table (`outbox`,
    delivered by `relay`; `outbox=None`: published directly after the commit, as before).
    With an `rls_key` (required on PostgreSQL), the rows' secret fields are sealed.
    """

    def __init__(
        self,
        database: Database,
        *,
        clock: Clock | None = None,
        publisher: EventPublisher | None = None,
        listeners: Sequence[CommitListener] = (),
        outbox: RelaySettings | None = RelaySettings(),  # noqa: B008 (frozen value)
    ) -> None:
        start_mappers()
        self.database = database
        self.clock: Clock = clock or SystemClock()
        self.publisher = publisher
        self.listeners = tuple(listeners)
        self.outbox = SqlOutbox(self)
        key = database.settings.rls_key
        #: seals the mail tokens in outbox rows (keys derived from EDU_RLS_KEY)
        self.sealer = Sealer(key) if key else None
        self.relay = (
            OutboxRelay(
                self.outbox, publisher, clock=self.clock, settings=outbox, sealer=self.sealer
            )
            if publisher is not None and outbox is not None
            else None
        )
        self.routing = EventRouting(publisher, self.relay, self.listeners, self.clock, self.sealer)
        self.compiler = QueryCompiler(database.dialect)
        #: PostgreSQL reads run precompiled on the driver; SQLite reads go through the ORM
        self.statements = (
            PgStatements(database.engine.dialect, self.compiler) if database.is_postgres else None
        )
        settings = database.settings
        #: what every transaction starts with, by read_only (checked once, shared: frozen)
        self._transaction_settings = (
            {
                flag: TransactionSettings(settings.schema, settings.lock_timeout_ms, read_only=flag)
                for flag in (False, True)
            }
            if database.is_postgres
            else {}
        )

    def change_log(self, *, tenant: UUID | None, actor: UUID | None) -> ChangeLog:
        return ChangeLog(tenant=tenant, actor=actor, clock=self.clock)

    def row_path(
        self,
        identities: Identities,
        changes: ChangeLog,
        *,
        read_only: bool = False,
        after: ConsistencyToken | None = None,
    ) -> RowPath:
        """The row path of one unit of work: the driver path on PostgreSQL, else the ORM;
        wrapped (`routing.RoutedRows`) when it is read-only or there are read replicas."""
        if self.statements is None:
            orm = OrmRows(self.compiler, identities, changes)
            return RoutedRows(orm, read_only=True) if read_only else orm
        settings, replicas = self.database.settings, self.database.replicas
        route = None
        if read_only and replicas is not None:
            route = ReadRoute(self.database, replicas, after)
        connection = UowConnection(
            self.database.engine,
            changes.tenant,
            self._transaction_settings[read_only],
            ping=settings.pool_pre_ping,
            attempts=settings.pool_size + settings.max_overflow + 1,
            checkout=None if route is None else route.checkout,
        )
        rows = PgRows(self.statements, connection, identities, changes, schema=settings.schema)
        if not read_only and replicas is None:
            return rows
        return RoutedRows(
            rows, read_only=read_only, connection=connection, route=route, replicas=replicas
        )

    def __call__(
        self,
        *,
        tenant: UUID,
        actor: UUID | None = None,
        read_only: bool = False,
        after: ConsistencyToken | str | None = None,
    ) -> SqlUnitOfWork:
        """A unit of work for `tenant`. `read_only=True` may read on a replica, never older
        than `after` (a consistency token) or the call chain's own commits."""
        return SqlUnitOfWork(
            self,
            tenant=check_tenant(tenant),
            actor=check_actor(actor),
            read_only=check_flag("read_only", read_only),
            after=ConsistencyToken.coerce(after),
        )

    def unscoped(
        self,
        *,
        actor: UUID | None = None,
        read_only: bool = False,
        after: ConsistencyToken | str | None = None,
    ) -> SqlUnitOfWork:
        return SqlUnitOfWork(
            self,
            tenant=None,
            actor=check_actor(actor),
            read_only=check_flag("read_only", read_only),
            after=ConsistencyToken.coerce(after),
        )

    async def boundary_problems(self) -> list[str]:
        """What would let the application role shadow edu-core's objects (empty: nothing).

        Migration 0003 revokes TEMP and CREATE; a database it could not revoke on (not
        its owner) or a later GRANT shows up here, and in `edu health`. SQLite: nothing.
        """
        if not self.database.is_postgres:
            return []
        schema = self.database.settings.schema
        async with self.database.engine.connect() as conn:
            row = (await conn.execute(text(_PRIVILEGES), {"schema": schema})).one()
            vouch_after_one_transaction(conn)
        database, temp, create, schemas = row
        problems = []
        if temp:
            problems.append(
                f"the application role may create temporary tables (TEMP on database"
                f" {database}): REVOKE TEMPORARY ON DATABASE {database} FROM PUBLIC and the role"
            )
        if create:
            problems.append(
                f"the application role may create schemas (CREATE on database {database})"
            )
        problems.extend(
            f"the application role may create objects in schema {name} (CREATE on schema {name})"
            for name in schemas
        )
        return problems

    async def rls_key_accepted(self) -> bool | None:
        """Whether the database accepts this process's signed settings (None: SQLite).

        A process whose `EDU_RLS_KEY` differs from the key `edu migrate` stored sees no
        rows and cannot write: the health check says so instead of leaving it to guesswork.
        """
        if self.statements is None:
            return None
        try:
            async with self.unscoped() as uow:
                assert isinstance(uow.rows, PgRows | RoutedRows)
                driver = await uow.rows.driver()
                return bool(await driver.fetchval("SELECT edu_unscoped()"))
        except Exception as error:  # not migrated, or the database went away: not accepted
            if isinstance(error, DomainError) or is_driver_error(error):
                log.warning("checking the row-level security key failed: %s", error)
                return False
            raise


__all__ = ["SqlUnitOfWorkFactory"]
