"""The one seam between the service and how edu-core is built.

`default_core()` builds edu-core with `edu_infra.container` from the `EDU_*` environment:
a SQLite file by default, PostgreSQL and Redis when EDU_DATABASE_URL / EDU_REDIS_URL say so.
It yields from an async context so the engine and the Redis client close on shutdown.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from edu_domain.services import EduCore
from edu_infra.container import open_core

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
    """edu-core from the `EDU_*` configuration (default: a SQLite file, migrated on start)."""
    async with open_core(notifier=LoggingNotifier(), migrate=True) as (core, where):
        log.info("edu-core on %s", where)
        yield core
