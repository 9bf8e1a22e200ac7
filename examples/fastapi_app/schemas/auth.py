"""Signing in and out, sessions, passwords and mail tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from examples.fastapi_app.schemas.common import RequestModel, ResponseModel
from examples.fastapi_app.schemas.fields import Email, OrganizationSlug, Password

#: Sign-in fields are not checked against the registration rules: whatever does not match an
#: account is a 401, so the answer never tells which part was wrong.
Login = Annotated[str, Field(min_length=1, max_length=254, examples=["admin"])]
SignInPassword = Annotated[
    str, Field(min_length=1, max_length=1024, json_schema_extra={"format": "password"})
]
MailToken = Annotated[str, Field(min_length=1, max_length=512, description="From the mail link")]

_ORG = "demo-school"


class LoginIn(RequestModel):
    """`organization` is the organization's slug; `login` an email address or a username."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"organization": _ORG, "login": "admin", "password": "correct horse battery"}
            ]
        }
    )

    organization: OrganizationSlug
    login: Login
    password: SignInPassword = Field(repr=False)


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


class AcceptedOut(BaseModel):
    """The request was taken; whether a mail goes out is never said."""

    status: str = "accepted"


class PasswordChange(RequestModel):
    """A wrong `current_password` is a 403."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"current_password": "correct horse battery", "new_password": "a longer horse 2"}
            ]
        }
    )

    current_password: SignInPassword = Field(repr=False)
    new_password: Password = Field(repr=False)


class PasswordResetRequest(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"organization": _ORG, "email": "admin@demo-school.example.org"}]
        }
    )

    organization: OrganizationSlug
    email: Email


class PasswordResetConfirm(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "organization": _ORG,
                    "token": "token-from-the-mail",
                    "new_password": "new horse 7",
                }
            ]
        }
    )

    organization: OrganizationSlug
    token: MailToken = Field(repr=False)
    new_password: Password = Field(repr=False)


class EmailVerification(RequestModel):
    """Mail tokens do not name their organization, so the link carries its slug as well."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"organization": _ORG, "token": "token-from-the-mail"}]}
    )

    organization: OrganizationSlug
    token: MailToken = Field(repr=False)
