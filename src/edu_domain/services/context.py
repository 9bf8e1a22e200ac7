"""Who is acting, for which organization, and under which security policy."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from attrs import field, frozen

from edu_domain.errors import ValidationError


@frozen
class Scope:
    """The tenant a use case runs for, and who acts.

    - `Scope(org_id, user_id)`: a member acts; the use case checks their current role
      against `edu_domain.policy`.
    - `Scope.system(org_id)`: the system acts (bootstrap, imports, the CLI, jobs): every
      action is allowed, the invariants still hold.
    - `Scope(org_id)` / `Scope.anonymous(org_id)`: nobody is known yet. Only the use cases
      that prove who is calling by themselves accept it (sign-in, password reset, email
      verification); every other one raises PermissionDenied. An absent actor never means
      "allowed everything".
    """

    organization_id: UUID
    actor_id: UUID | None = None
    is_system: bool = field(default=False, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.is_system, bool):
            raise ValidationError("is_system", "must be true or false")
        if self.is_system and self.actor_id is not None:
            raise ValidationError("actor_id", "a system scope acts for no user")

    @classmethod
    def system(cls, organization_id: UUID) -> Scope:
        """The system acting for `organization_id` (no user: audit fields stay empty)."""
        return cls(organization_id, is_system=True)

    @classmethod
    def anonymous(cls, organization_id: UUID) -> Scope:
        """Nobody known yet: only self-authenticating use cases accept it."""
        return cls(organization_id)


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
    #: The longest session a caller may ask `record_login` for (its own `expires_at`).
    session_max_ttl: timedelta = field(default=timedelta(days=30), validator=_positive)
    verification_ttl: timedelta = field(default=timedelta(hours=48), validator=_positive)
    reset_ttl: timedelta = field(default=timedelta(hours=1), validator=_positive)
    password_min_length: int = field(default=8, validator=_positive)
    password_max_length: int = field(default=256, validator=_positive)
    require_verified_email: bool = True

    def __attrs_post_init__(self) -> None:
        if self.session_ttl > self.session_max_ttl:
            raise ValidationError("session_max_ttl", "must be at least the session lifetime")
