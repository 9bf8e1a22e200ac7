"""The only exceptions a caller of edu-core ever has to catch.

Adapters translate every driver error into one of these; nothing from SQLAlchemy, asyncpg,
sqlite3 or redis crosses the port boundary. Messages never carry secrets.
"""

from __future__ import annotations

from datetime import datetime


class DomainError(Exception):
    """Base of every error edu-core raises on purpose."""


class ValidationError(DomainError):
    """Input breaks a rule; `field` names the offending field (or query part)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NotFound(DomainError):
    """The entity does not exist for this tenant (or is soft-deleted)."""

    def __init__(self, entity: str, key: object) -> None:
        super().__init__(f"{entity} not found: {key}")
        self.entity = entity
        self.key = key


class AlreadyExists(DomainError):
    """A uniqueness rule was violated; `field` names the unique field."""

    def __init__(self, entity: str, field: str) -> None:
        super().__init__(f"{entity} with this {field} already exists")
        self.entity = entity
        self.field = field


class ConcurrencyConflict(DomainError):
    """Someone else changed the entity since it was read (optimistic locking)."""

    def __init__(self, entity: str, key: object) -> None:
        super().__init__(f"{entity} {key} was changed concurrently; reload and retry")
        self.entity = entity
        self.key = key


class TenantViolation(DomainError):
    """A write or read tried to cross organizations."""


class PermissionDenied(DomainError):
    """The actor may not perform this action."""


class InvalidState(DomainError):
    """The action does not apply to the entity in its current state."""


class ReadOnlyError(InvalidState):
    """A write in a unit of work opened read-only (`read_only=True`); nothing was written."""

    def __init__(
        self, message: str = "this unit of work is read-only: nothing was written"
    ) -> None:
        super().__init__(message)


class AuthenticationFailed(DomainError):
    """Wrong credentials. Deliberately vague: never says which part was wrong."""

    def __init__(self) -> None:
        super().__init__("invalid credentials")


class AccountLocked(DomainError):
    """Too many failed logins in a row; the account is locked until `until`."""

    def __init__(self, until: datetime) -> None:
        super().__init__(f"account locked until {until.isoformat()}")
        self.until = until


class InvalidToken(DomainError):
    """A token is unknown, expired, already used or revoked."""

    def __init__(self, purpose: str) -> None:
        super().__init__(f"invalid or expired {purpose} token")
        self.purpose = purpose


class RetryableError(DomainError):
    """A transient failure (lost connection, serialization failure, deadlock).

    Nothing of the unit of work was committed; running it again may succeed.
    """


class UnavailableError(DomainError):
    """A backing service is unreachable and retrying now will not help."""


__all__ = [
    "AccountLocked",
    "AlreadyExists",
    "AuthenticationFailed",
    "ConcurrencyConflict",
    "DomainError",
    "InvalidState",
    "InvalidToken",
    "NotFound",
    "PermissionDenied",
    "ReadOnlyError",
    "RetryableError",
    "TenantViolation",
    "UnavailableError",
    "ValidationError",
]
