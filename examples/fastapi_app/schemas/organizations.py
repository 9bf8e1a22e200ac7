"""Organizations: bootstrap input and output, and statistics."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from edu_domain.model import OrganizationStatus
from examples.fastapi_app.schemas.common import RequestModel, ResponseModel
from examples.fastapi_app.schemas.users import AccountOut


class FirstAdmin(RequestModel):
    email: str
    username: str
    password: str = Field(repr=False)
    full_name: str | None = None


class OrganizationCreate(RequestModel):
    """A new organization and its first administrator (created verified and active)."""

    name: str
    slug: str | None = None
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
