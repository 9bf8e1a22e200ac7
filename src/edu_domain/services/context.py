"""Who is acting, for which organization, and under which security policy."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from attrs import field, frozen

from edu_domain.errors import ValidationError


@frozen
class Scope:
    """The tenant a use case runs for and the user performing it (None: anonymous/system)."""

    organization_id: UUID
    actor_id: UUID | None = None


def _positive(_instance: object, attribute: object, value: timedelta | int) -> None:
    positive = value > timedelta(0) if isinstance(value, timedelta) else value > 0
    if not positive:
        raise ValidationError(getattr(attribute, "name", "policy"), "must be positive")


@frozen(kw_only=True)
class SecurityPolicy:
    """Lockout, token lifetimes and password bounds; configurable per deployment."""

    max_failed_logins: int = field(default=5, validator=_positive)
    lockout: timedelta = field(default=timedelta(minutes=15), validator=_positive)
    session_ttl: timedelta = field(default=timedelta(days=7), validator=_positive)
    verification_ttl: timedelta = field(default=timedelta(hours=48), validator=_positive)
    reset_ttl: timedelta = field(default=timedelta(hours=1), validator=_positive)
    password_min_length: int = field(default=8, validator=_positive)
    password_max_length: int = field(default=256, validator=_positive)
    require_verified_email: bool = True
