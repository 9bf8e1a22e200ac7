"""Opens SQL units of work: one per task or request, never shared."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from uuid import UUID

from edu_domain.errors import DomainError, ValidationError
from edu_domain.ports import Clock, CommitListener, EventPublisher
from edu_infra.sqlalchemy.compiler import QueryCompiler
from edu_infra.sqlalchemy.engine import Database
from edu_infra.sqlalchemy.errors import is_driver_error
from edu_infra.sqlalchemy.mapping import start_mappers
from edu_infra.sqlalchemy.reads import PgReads
from edu_infra.sqlalchemy.uow import SqlUnitOfWork
from edu_infra.system import SystemClock

log = logging.getLogger("edu_infra")


class SqlUnitOfWorkFactory:
    """`edu_domain.ports.UnitOfWorkFactory` over a `Database` (maps the entities on first use)."""

    def __init__(
        self,
        database: Database,
        *,
        clock: Clock | None = None,
        publisher: EventPublisher | None = None,
        listeners: Sequence[CommitListener] = (),
    ) -> None:
        start_mappers()
        self.database = database
        self.clock: Clock = clock or SystemClock()
        self.publisher = publisher
        self.listeners = tuple(listeners)
        self.compiler = QueryCompiler(database.dialect)
        #: PostgreSQL reads run precompiled on the driver; SQLite reads go through the ORM
        self.reads = (
            PgReads(database.engine.dialect, self.compiler) if database.is_postgres else None
        )

    def __call__(self, *, tenant: UUID, actor: UUID | None = None) -> SqlUnitOfWork:
        if not isinstance(tenant, UUID):
            raise ValidationError("tenant", "expects the organization's UUID")
        return SqlUnitOfWork(self, tenant=tenant, actor=actor)

    def unscoped(self, *, actor: UUID | None = None) -> SqlUnitOfWork:
        return SqlUnitOfWork(self, tenant=None, actor=actor)

    async def rls_key_accepted(self) -> bool | None:
        """Whether the database accepts this process's signed settings (None: SQLite).

        A process whose `EDU_RLS_KEY` differs from the key `edu migrate` stored sees no
        rows and cannot write: the health check says so instead of leaving it to guesswork.
        """
        if self.reads is None:
            return None
        try:
            async with self.unscoped() as uow:
                driver = await uow._driver()
                return bool(await driver.fetchval("SELECT edu_unscoped()"))
        except Exception as error:  # not migrated, or the database went away: not accepted
            if isinstance(error, DomainError) or is_driver_error(error):
                log.warning("checking the row-level security key failed: %s", error)
                return False
            raise


__all__ = ["SqlUnitOfWorkFactory"]
