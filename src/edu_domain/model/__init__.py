"""Entities and value objects of edu-core, one module per aggregate."""

from edu_domain.model.base import DomainEvent, Entity, Reference, TenantEntity, UniqueKey
from edu_domain.model.content import (
    ContentStatus,
    ContentType,
    DifficultyLevel,
    EducationalContent,
)
from edu_domain.model.events import (
    ContentArchived,
    ContentPublished,
    EmailVerificationRequested,
    EmailVerified,
    PasswordChanged,
    PasswordResetRequested,
    SessionsRevoked,
    UserDeleted,
    UserLockedOut,
    UserLoggedIn,
    UserRegistered,
    UserRestored,
)
from edu_domain.model.ids import uuid7
from edu_domain.model.organization import Organization, OrganizationStatus
from edu_domain.model.session import LoginSession, TokenPurpose, UserToken
from edu_domain.model.user import PUBLISHING_ROLES, User, UserProfile, UserRole, UserStatus

#: Every persisted entity class, parents before children (the order inserts must follow).
ENTITY_TYPES: tuple[type[Entity], ...] = (
    Organization,
    User,
    UserProfile,
    LoginSession,
    UserToken,
    EducationalContent,
)

__all__ = [
    "ENTITY_TYPES",
    "PUBLISHING_ROLES",
    "ContentArchived",
    "ContentPublished",
    "ContentStatus",
    "ContentType",
    "DifficultyLevel",
    "DomainEvent",
    "EducationalContent",
    "EmailVerificationRequested",
    "EmailVerified",
    "Entity",
    "LoginSession",
    "Organization",
    "OrganizationStatus",
    "PasswordChanged",
    "PasswordResetRequested",
    "Reference",
    "SessionsRevoked",
    "TenantEntity",
    "TokenPurpose",
    "UniqueKey",
    "User",
    "UserDeleted",
    "UserLockedOut",
    "UserLoggedIn",
    "UserProfile",
    "UserRegistered",
    "UserRestored",
    "UserRole",
    "UserStatus",
    "UserToken",
    "uuid7",
]
