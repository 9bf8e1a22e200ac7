"""Organizations: bootstrap input and output, and statistics."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from edu_domain.model import OrganizationStatus
from examples.fastapi_app.schemas.common import RequestModel, ResponseModel
from examples.fastapi_app.schemas.fields import (
    Email,
    OrganizationName,
    OrganizationSlug,
    Password,
    PersonName,
    Username,
)
from examples.fastapi_app.schemas.users import AccountOut


class FirstAdmin(RequestModel):
    email: Email
    username: Username
    password: Password = Field(repr=False)
    full_name: PersonName | None = None


class OrganizationCreate(RequestModel):
    """A new organization and its first administrator (created verified and active). The slug
    is derived from the name when not given (or null)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Demo School",
                    "slug": "demo-school",
                    "admin": {
                        "email": "admin@demo-school.example.org",
                        "username": "admin",
                        "password": "correct horse battery",
                        "full_name": "Dana Admin",
                    },
                }
            ]
        }
    )

    name: OrganizationName
    slug: OrganizationSlug | None = None
    admin: FirstAdmin


class OrganizationOut(ResponseModel):
    id: UUID
    name: str
    slug: str
    status: OrganizationStatus
    created_at: datetime | None


class BootstrapOut(BaseModel):
    organization: OrganizationOut
    admin: AccountOut


class UserStatisticsOut(ResponseModel):
    total: int
    by_role: dict[str, int]
    by_status: dict[str, int]
    verified: int
    unverified: int
    active_sessions: int
    new_last_30_days: int


class ContentStatisticsOut(BaseModel):
    total: int
    by_status: dict[str, int]


class StatisticsOut(BaseModel):
    users: UserStatisticsOut
    content: ContentStatisticsOut
