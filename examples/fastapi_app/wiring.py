"""The one seam between the service and how edu-core is built.

`default_core()` wires the in-memory adapters so the example runs with nothing installed.
Switching to `edu_infra.container` (SQLite by default) means changing this function only:
it already yields the core from an async context, so adapters can be closed on shutdown.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from edu_domain.services import Deps, EduCore, EventDispatcher
from edu_infra.memory import InMemoryUnitOfWorkFactory
from edu_infra.security import Argon2PasswordHasher
from edu_infra.system import SecretTokenGenerator, SystemClock, Uuid7Generator

log = logging.getLogger("examples.fastapi_app.mail")


class LoggingNotifier:
    """Development stand-in for a mail sender: logs each mail, with its link at DEBUG level.

    The token is a credential, so it is only logged at DEBUG; never use this in production.
    """

    async def send_email_verification(self, email: str, token: str, expires_at: datetime) -> None:
        log.info("verification mail for %s (valid until %s)", email, expires_at.isoformat())
        log.debug("verification token for %s: %s", email, token)

    async def send_password_reset(self, email: str, token: str, expires_at: datetime) -> None:
        log.info("password reset mail for %s (valid until %s)", email, expires_at.isoformat())
        log.debug("password reset token for %s: %s", email, token)


@asynccontextmanager
async def default_core() -> AsyncIterator[EduCore]:
    """An edu-core over the in-memory adapters (data lives as long as the process)."""
    clock = SystemClock()
    uow = InMemoryUnitOfWorkFactory(clock=clock, publisher=EventDispatcher(LoggingNotifier()))
    yield EduCore(
        Deps(
            uow=uow,
            clock=clock,
            ids=Uuid7Generator(),
            tokens=SecretTokenGenerator(),
            hasher=Argon2PasswordHasher(),
        )
    )
