"""Production implementations of the small ports: clock, ids, secrets."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from uuid import UUID

from edu_domain.model.ids import uuid7


class SystemClock:
    """UTC wall-clock time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class Uuid7Generator:
    """Time-ordered UUIDv7 ids: inserts land at the right edge of the primary-key index."""

    def new_id(self) -> UUID:
        return uuid7()


class SecretTokenGenerator:
    """URL-safe secrets from the OS CSPRNG (`secrets`), 32 bytes = 256 bits by default."""

    def __init__(self, nbytes: int = 32) -> None:
        self._nbytes = nbytes

    def new_secret(self) -> str:
        return secrets.token_urlsafe(self._nbytes)
