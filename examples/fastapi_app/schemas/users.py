"""Users and profiles as the API shows them (no password hash, no lockout internals)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from edu_domain.model import UserRole, UserStatus
from edu_domain.services import UserAccount
from examples.fastapi_app.schemas.common import RequestModel, ResponseModel


class UserCreate(RequestModel):
    """A user registered by an administrator; a verification mail goes out."""

    email: str
    username: str
    password: str = Field(repr=False)
    full_name: str | None = None
    role: UserRole = UserRole.STUDENT
    bio: str | None = None
    skills: list[str] = Field(default_factory=list)
    avatar_url: str | None = None
    timezone: str = "UTC"
    locale: str = "en"


class UserUpdate(RequestModel):
    """Only the fields sent are changed. Non-admins may change their own `full_name` only."""

    email: str | None = None
    username: str | None = None
    full_name: str | None = None
    role: UserRole | None = None
    status: UserStatus | None = None


class ProfileUpdate(RequestModel):
    bio: str | None = None
    skills: list[str] | None = None
    avatar_url: str | None = None
    timezone: str | None = None
    locale: str | None = None


class UserOut(ResponseModel):
    id: UUID
    organization_id: UUID
    email: str
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
    version: int


class ProfileOut(ResponseModel):
    user_id: UUID
    bio: str | None
    skills: list[str]
    avatar_url: str | None
    timezone: str
    locale: str
    updated_at: datetime | None
    version: int


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
