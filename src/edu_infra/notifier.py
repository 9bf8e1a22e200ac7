"""A Notifier for development: logs that a mail would be sent, never the token itself."""

from __future__ import annotations

import logging
from datetime import datetime

log = logging.getLogger("edu_infra.mail")


class LoggingNotifier:
    """Replace with a real mail sender via `container.notifier.override(...)`."""

    async def send_email_verification(self, email: str, token: str, expires_at: datetime) -> None:
        log.info("verification mail to %s (expires %s)", email, expires_at.isoformat())

    async def send_password_reset(self, email: str, token: str, expires_at: datetime) -> None:
        log.info("password reset mail to %s (expires %s)", email, expires_at.isoformat())
