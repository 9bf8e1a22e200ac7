"""Signing in and out, sessions, passwords and mail tokens."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from examples.fastapi_app.schemas.common import RequestModel, ResponseModel


class LoginIn(RequestModel):
    """`organization` is the organization's slug; `login` an email address or a username."""

    organization: str
    login: str
    password: str = Field(repr=False)


class LoginOut(BaseModel):
    """The bearer token is shown once; only its hash is stored."""

    token: str = Field(repr=False)
    token_type: str = "bearer"  # noqa: S105 - the scheme name, not a secret
    session_id: UUID
    expires_at: datetime


class SessionOut(ResponseModel):
    id: UUID
    ip_address: str | None
    user_agent: str | None
    created_at: datetime | None
    expires_at: datetime
    current: bool = False


class RevokedOut(BaseModel):
    revoked: int


class PasswordChange(RequestModel):
    current_password: str = Field(repr=False)
    new_password: str = Field(repr=False)


class PasswordResetRequest(RequestModel):
    organization: str
    email: str


class PasswordResetConfirm(RequestModel):
    organization: str
    token: str = Field(repr=False)
    new_password: str = Field(repr=False)


class EmailVerification(RequestModel):
    """Mail tokens do not name their organization, so the link carries its slug as well."""

    organization: str
    token: str = Field(repr=False)
