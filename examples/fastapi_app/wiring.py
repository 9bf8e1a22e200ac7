"""The one seam between the service and how edu-core is built.

`default_core()` builds edu-core with `edu_infra.container` from the `EDU_*` environment:
a SQLite file by default, PostgreSQL and Redis when EDU_DATABASE_URL / EDU_REDIS_URL say so.
It yields from an async context so the engine and the Redis client close on shutdown.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from edu_domain.services import EduCore
from edu_infra.container import open_core

log = logging.getLogger("examples.fastapi_app.mail")


class LoggingNotifier:
    """Development stand-in for a mail sender: logs that a mail would go out, never its token.

    A mail token is a credential (a reset token takes over the account), and DEBUG logs end
    up in log stores too. To try the mail flows locally, pass `reveal_tokens=True`
    explicitly (never in a deployment), or replace the notifier with a real mail sender.
    """

    def __init__(self, *, reveal_tokens: bool = False) -> None:
        self._reveal_tokens = reveal_tokens

    async def send_email_verification(self, email: str, token: str, expires_at: datetime) -> None:
        log.info("verification mail for %s (valid until %s)", email, expires_at.isoformat())
        self._reveal("verification", email, token)

    async def send_password_reset(self, email: str, token: str, expires_at: datetime) -> None:
        log.info("password reset mail for %s (valid until %s)", email, expires_at.isoformat())
        self._reveal("password reset", email, token)

    def _reveal(self, kind: str, email: str, token: str) -> None:
        if self._reveal_tokens:
            log.warning("DEVELOPMENT ONLY: %s token for %s: %s", kind, email, token)


@asynccontextmanager
async def default_core() -> AsyncIterator[EduCore]:
    """edu-core from the `EDU_*` configuration (default: a SQLite file, migrated on start).

    With `EDU_SMTP_HOST` set the container's SMTP notifier sends the mails; without it they
    are only logged (`LoggingNotifier`)."""
    notifier = None if os.environ.get("EDU_SMTP_HOST") else LoggingNotifier()
    async with open_core(notifier=notifier, migrate=True) as (core, where):
        log.info("edu-core on %s", where)
        yield core
