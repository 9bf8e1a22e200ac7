"""An edu-core whose mails go through a mailer that fails on request, on every adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from attrs import define, field
from sqlalchemy import text

from edu_domain.errors import UnavailableError
from edu_domain.model import Organization
from edu_domain.ports import Mail, UnitOfWorkFactory
from edu_domain.services import Deps, EduCore, EventDispatcher, NewUser, Scope
from edu_infra.memory import (
    FastHasher,
    InMemoryUnitOfWorkFactory,
    ManualClock,
    SequentialTokens,
)
from edu_infra.outbox import OutboxRelay, OutboxState, RelaySettings
from edu_infra.sqlalchemy import Database, DatabaseSettings, SqlUnitOfWorkFactory
from edu_infra.system import Uuid7Generator
from tests.reliability.conftest import reliability_database
from tests.sql_harness import RLS_KEY, fresh_sqlite_url

PASSWORD = "correct horse battery"


@define
class FlakyMailer:
    """A `MailSender` that refuses the next `failures` mails, then delivers."""

    failures: int = 0
    sent: list[Mail] = field(factory=list)
    refused: int = 0

    async def send_mail(self, mail: Mail) -> None:
        if self.failures > 0:
            self.failures -= 1
            self.refused += 1
            raise UnavailableError("mail server 127.0.0.1:25 could not take the mail")
        self.sent.append(mail)

    async def send_email_verification(self, *args: Any) -> None:
        raise AssertionError("EventDispatcher sends whole mails to a MailSender")

    async def send_password_reset(self, *args: Any) -> None:
        raise AssertionError("EventDispatcher sends whole mails to a MailSender")


@define
class MailStack:
    core: EduCore
    factory: UnitOfWorkFactory
    relay: OutboxRelay
    clock: ManualClock
    mailer: FlakyMailer

    async def counts(self) -> tuple[int, int]:
        counts = await self.relay.store.counts()
        return counts[OutboxState.PENDING], counts[OutboxState.DEAD]

    async def stored_payloads(self) -> str:
        """Every outbox row's payload as the database keeps it (memory: the row's dict)."""
        store = getattr(self.factory, "store", None)
        if store is not None:
            return repr([row.payload for row in store.outbox.values()])
        async with self.factory.unscoped() as uow:
            session = uow.session  # type: ignore[attr-defined]
            rows = await session.execute(text("SELECT CAST(payload AS TEXT) FROM outbox_events"))
            return repr(rows.scalars().all())

    async def register(self, org: Organization, name: str = "ada") -> None:
        await self.core.users.register(
            Scope.system(org.id),
            NewUser(email=f"{name}@example.org", username=name, password=PASSWORD),
        )


def _stack(factory: Any, clock: ManualClock, mailer: FlakyMailer) -> MailStack:
    deps = Deps(
        uow=factory,
        clock=clock,
        ids=Uuid7Generator(),
        tokens=SequentialTokens(),
        hasher=FastHasher(),
    )
    assert factory.relay is not None
    return MailStack(EduCore(deps), factory, factory.relay, clock, mailer)


@asynccontextmanager
async def mail_stack(kind: str, settings: RelaySettings | None = None) -> AsyncIterator[MailStack]:
    """memory, sqlite or postgres (the reliability suite's database, truncated)."""
    clock, mailer = ManualClock(), FlakyMailer()
    publisher = EventDispatcher(mailer)
    outbox = settings or RelaySettings()
    if kind == "memory":
        factory = InMemoryUnitOfWorkFactory(clock=clock, publisher=publisher, outbox=outbox)
        yield _stack(factory, clock, mailer)
        return
    if kind == "sqlite":
        # a key seals the mail tokens in the outbox rows (SQLite's profile may set one)
        database = Database(DatabaseSettings(url=await fresh_sqlite_url(), rls_key=RLS_KEY))
    else:
        pg = await reliability_database()
        await pg.truncate()
        database = Database(DatabaseSettings(url=pg.app_url, rls_key=RLS_KEY))
    try:
        sql = SqlUnitOfWorkFactory(database, clock=clock, publisher=publisher, outbox=outbox)
        yield _stack(sql, clock, mailer)
    finally:
        await database.dispose()
