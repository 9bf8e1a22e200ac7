"""Users of an organization and their profiles."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import ClassVar
from uuid import UUID

from attrs import define, field

from edu_domain.errors import ValidationError
from edu_domain.model import rules
from edu_domain.model.base import (
    Reference,
    TenantEntity,
    UniqueKey,
    check_bool,
    check_int,
    check_uuid,
    enum_of,
    nullable,
    rule,
    to_enum,
)


class UserRole(StrEnum):
    STUDENT = "student"
    TEACHER = "teacher"
    TEACHING_ASSISTANT = "teaching_assistant"
    PARENT = "parent"
    STAFF = "staff"
    ADMIN = "admin"


def _to_userrole(value: object) -> object:
    return to_enum(UserRole)(value)


#: Roles whose members may publish content.
PUBLISHING_ROLES = frozenset({UserRole.TEACHER, UserRole.STAFF, UserRole.ADMIN})


class UserStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DEACTIVATED = "deactivated"


def _to_userstatus(value: object) -> object:
    return to_enum(UserStatus)(value)


def check_status_change(current: UserStatus, wanted: object) -> None:
    """PENDING is a new account's state until its address is verified: nobody sets it
    again (an account sent back to it would act without counting as active)."""
    if _to_userstatus(wanted) is UserStatus.PENDING and current is not UserStatus.PENDING:
        raise ValidationError(
            "status", "pending is the state of a new account until it is verified"
        )


@define(slots=False, eq=False, kw_only=True)
class User(TenantEntity):
    """A person who signs in. The email is stored lower-cased: unique ignoring case."""

    __unique__: ClassVar[tuple[UniqueKey, ...]] = (
        UniqueKey(fields=("organization_id", "email"), reported_as="email"),
        UniqueKey(fields=("organization_id", "username"), reported_as="username"),
    )

    email: str = field(converter=rules.normalize_email, validator=rule(rules.check_email))
    username: str = field(converter=rules.normalize_username, validator=rule(rules.check_username))
    hashed_password: str = field(
        repr=False, validator=rule(rules.check_text, max_len=rules.SECRET_HASH_MAX)
    )
    full_name: str | None = field(
        default=None, validator=nullable(rules.check_display_text, max_len=rules.NAME_MAX)
    )
    role: UserRole = field(
        default=UserRole.STUDENT, converter=_to_userrole, validator=enum_of(UserRole)
    )
    status: UserStatus = field(
        default=UserStatus.PENDING, converter=_to_userstatus, validator=enum_of(UserStatus)
    )
    email_verified: bool = field(default=False, validator=rule(check_bool))
    email_verified_at: datetime | None = field(default=None, validator=nullable(rules.check_aware))
    last_login_at: datetime | None = field(default=None, validator=nullable(rules.check_aware))
    failed_login_count: int = field(default=0, validator=rule(check_int))
    locked_until: datetime | None = field(default=None, validator=nullable(rules.check_aware))
    password_changed_at: datetime | None = field(
        default=None, validator=nullable(rules.check_aware)
    )

    def rename(self, full_name: str | None) -> None:
        self.full_name = full_name

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now

    def mark_email_verified(self, now: datetime) -> bool:
        """Returns False when it already was verified (verification is idempotent)."""
        if self.email_verified:
            return False
        self.email_verified = True
        self.email_verified_at = now
        if self.status is UserStatus.PENDING:
            self.status = UserStatus.ACTIVE
        return True

    def record_failed_login(self, now: datetime, max_failures: int, lock_for: timedelta) -> bool:
        """Count a failure; returns True when this failure locks the account."""
        self.failed_login_count += 1
        if self.failed_login_count >= max_failures:
            self.locked_until = now + lock_for
            self.failed_login_count = 0
            return True
        return False

    def record_successful_login(self, now: datetime) -> None:
        self.failed_login_count = 0
        self.locked_until = None
        self.last_login_at = now

    def change_password_hash(self, hashed_password: str, now: datetime) -> None:
        self.hashed_password = hashed_password
        self.password_changed_at = now


@define(slots=False, eq=False, kw_only=True)
class UserProfile(TenantEntity):
    """What a user tells about themselves; exactly one per user."""

    __unique__: ClassVar[tuple[UniqueKey, ...]] = (
        UniqueKey(fields=("organization_id", "user_id"), reported_as="user_id"),
    )
    __references__: ClassVar[tuple[Reference, ...]] = (
        Reference(field="user_id", target=User, on_delete="cascade"),
    )

    user_id: UUID = field(validator=rule(check_uuid))
    bio: str | None = field(
        default=None, validator=nullable(rules.check_text, max_len=rules.BIO_MAX, multiline=True)
    )
    skills: tuple[str, ...] = field(
        factory=tuple, converter=rules.normalize_string_list, validator=rule(rules.check_skills)
    )
    avatar_url: str | None = field(default=None, validator=nullable(rules.check_url))
    timezone: str = field(default="UTC", validator=rule(rules.check_timezone))
    locale: str = field(default="en", validator=rule(rules.check_locale))
