"""What read use cases return when one entity is not the whole answer."""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

from attrs import field, frozen

from edu_domain.model.session import LoginSession
from edu_domain.model.user import User, UserProfile, UserRole


@frozen
class UserAccount:
    """A user together with their profile (the old `create_user_with_profile` result)."""

    user: User
    profile: UserProfile | None


@frozen
class LoginResult:
    """A new login session and the bearer token for it (shown once, never stored)."""

    session: LoginSession
    token: str = field(repr=False)


@frozen
class Principal:
    """Who a session token belongs to: the tenant and actor for every later request."""

    organization_id: UUID
    user_id: UUID
    session_id: UUID
    role: UserRole


@frozen(kw_only=True)
class UserStatistics:
    total: int
    by_role: Mapping[str, int]
    by_status: Mapping[str, int]
    verified: int
    unverified: int
    active_sessions: int
    new_last_30_days: int
