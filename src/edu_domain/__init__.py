"""edu-core's domain: entities, the query language, ports and use cases. Pure Python + attrs."""

from edu_domain.errors import (
    AccountLocked,
    AlreadyExists,
    AuthenticationFailed,
    ConcurrencyConflict,
    DomainError,
    InvalidState,
    InvalidToken,
    NotFound,
    PermissionDenied,
    ReadOnlyError,
    RetryableError,
    TenantViolation,
    UnavailableError,
    ValidationError,
)
from edu_domain.query import F, Group, Order, Page, Query, all_of, any_of

__all__ = [
    "AccountLocked",
    "AlreadyExists",
    "AuthenticationFailed",
    "ConcurrencyConflict",
    "DomainError",
    "F",
    "Group",
    "InvalidState",
    "InvalidToken",
    "NotFound",
    "Order",
    "Page",
    "PermissionDenied",
    "Query",
    "ReadOnlyError",
    "RetryableError",
    "TenantViolation",
    "UnavailableError",
    "ValidationError",
    "all_of",
    "any_of",
]
