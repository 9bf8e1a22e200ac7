"""Domain events: facts the rest of a platform may react to after a commit.

Events that carry a secret (a raw verification or reset token, needed to send the mail)
keep it out of their repr.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from attrs import field, frozen

from edu_domain.model.base import DomainEvent


@frozen(kw_only=True)
class UserRegistered(DomainEvent):
    organization_id: UUID
    user_id: UUID
    email: str


@frozen(kw_only=True)
class EmailVerificationRequested(DomainEvent):
    organization_id: UUID
    user_id: UUID
    email: str
    token: str = field(repr=False)
    expires_at: datetime


@frozen(kw_only=True)
class EmailVerified(DomainEvent):
    organization_id: UUID
    user_id: UUID


@frozen(kw_only=True)
class PasswordResetRequested(DomainEvent):
    organization_id: UUID
    user_id: UUID
    email: str
    token: str = field(repr=False)
    expires_at: datetime


@frozen(kw_only=True)
class PasswordChanged(DomainEvent):
    organization_id: UUID
    user_id: UUID


@frozen(kw_only=True)
class UserLoggedIn(DomainEvent):
    organization_id: UUID
    user_id: UUID
    session_id: UUID


@frozen(kw_only=True)
class UserLockedOut(DomainEvent):
    organization_id: UUID
    user_id: UUID
    until: datetime


@frozen(kw_only=True)
class SessionsRevoked(DomainEvent):
    organization_id: UUID
    user_id: UUID
    count: int


@frozen(kw_only=True)
class UserDeleted(DomainEvent):
    organization_id: UUID
    user_id: UUID
    hard: bool


@frozen(kw_only=True)
class UserRestored(DomainEvent):
    organization_id: UUID
    user_id: UUID


@frozen(kw_only=True)
class ContentPublished(DomainEvent):
    organization_id: UUID
    content_id: UUID
    slug: str


@frozen(kw_only=True)
class ContentArchived(DomainEvent):
    organization_id: UUID
    content_id: UUID
