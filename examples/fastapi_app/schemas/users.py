"""Users and profiles as the API shows them (no password hash, no lockout internals)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from edu_domain.model import User, UserProfile, UserRole, UserStatus
from edu_domain.model.rules import SKILLS_MAX
from edu_domain.policy import CONTACT_FIELDS
from edu_domain.services import UserAccount
from examples.fastapi_app.schemas.common import RequestModel, ResponseModel, omittable
from examples.fastapi_app.schemas.fields import (
    Bio,
    Email,
    Locale,
    Password,
    PersonName,
    Skill,
    TimeZone,
    Url,
    Username,
)


class UserCreate(RequestModel):
    """A user registered by an administrator; a verification mail goes out."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "email": "bart@springfield.example.org",
                    "username": "bart",
                    "password": "eat my shorts 42",
                    "full_name": "Bart Simpson",
                    "role": "student",
                }
            ]
        }
    )

    email: Email
    username: Username
    password: Password = Field(repr=False)
    full_name: PersonName | None = None
    role: UserRole = UserRole.STUDENT
    bio: Bio | None = None
    skills: list[Skill] = Field(default_factory=list, max_length=SKILLS_MAX)
    avatar_url: Url | None = None
    timezone: TimeZone = "UTC"
    locale: Locale = "en"


class UserUpdate(RequestModel):
    """Only the fields sent are changed; only `full_name` may be null. Non-admins may change
    their own `full_name` only."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"full_name": "Ada King"}]})

    email: Email = omittable()
    username: Username = omittable()
    full_name: PersonName | None = None
    role: UserRole = omittable()
    status: UserStatus = omittable()


class ProfileUpdate(RequestModel):
    """Only the fields sent are changed; `bio` and `avatar_url` may be null (cleared)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"bio": "Likes fractions.", "timezone": "Europe/Berlin"}]}
    )

    bio: Bio | None = None
    skills: list[Skill] = omittable(max_length=SKILLS_MAX)
    avatar_url: Url | None = None
    timezone: TimeZone = omittable()
    locale: Locale = omittable()


#: Null for a caller who may not see the contact details: sign-ins (and failed ones) change
#: the user's row, so its `updated_at` and `version` (the ETag) would show them too.
CHANGE_MARKERS = ("updated_at", "version")


class UserOut(ResponseModel):
    """A user. `email`, `email_verified_at` and `last_login_at` (`policy.CONTACT_FIELDS`) are
    null when the caller may not see them: students and parents see those of their own account
    only; `updated_at` and `version` are null then too (a sign-in moves them)."""

    id: UUID
    organization_id: UUID
    email: str | None
    username: str
    full_name: str | None
    role: UserRole
    status: UserStatus
    email_verified: bool
    email_verified_at: datetime | None
    last_login_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None
    deleted_at: datetime | None
    version: int | None

    def without_contact_details(self) -> UserOut:
        return self.model_copy(update=dict.fromkeys((*CONTACT_FIELDS, *CHANGE_MARKERS)))

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls.model_validate(user)


class ProfileOut(ResponseModel):
    user_id: UUID
    bio: str | None
    skills: list[str]
    avatar_url: str | None
    timezone: str
    locale: str
    updated_at: datetime | None
    version: int

    @classmethod
    def of(cls, profile: UserProfile) -> ProfileOut:
        return cls.model_validate(profile)


class AccountOut(BaseModel):
    user: UserOut
    profile: ProfileOut | None

    @classmethod
    def of(cls, account: UserAccount) -> AccountOut:
        profile = account.profile
        return cls(
            user=UserOut.model_validate(account.user),
            profile=None if profile is None else ProfileOut.model_validate(profile),
        )


class UserPage(BaseModel):
    """One page of users; pass `next_cursor` as `cursor` for the next one (None: the end)."""

    items: list[UserOut]
    next_cursor: str | None
