"""Educational content as the API shows it."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from edu_domain.model import ContentStatus, ContentType, DifficultyLevel
from examples.fastapi_app.schemas.common import RequestModel, ResponseModel


class ContentCreate(RequestModel):
    """A draft authored by the caller; the slug is derived from the title when not given."""

    title: str
    body: str = ""
    slug: str | None = None
    content_type: ContentType = ContentType.LESSON
    difficulty: DifficultyLevel = DifficultyLevel.BEGINNER
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


class ContentUpdate(RequestModel):
    """Only the fields sent are changed; archived content cannot be edited."""

    title: str | None = None
    slug: str | None = None
    body: str | None = None
    content_type: ContentType | None = None
    difficulty: DifficultyLevel | None = None
    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None


class ContentOut(ResponseModel):
    id: UUID
    organization_id: UUID
    title: str
    slug: str
    body: str
    content_type: ContentType
    difficulty: DifficultyLevel
    status: ContentStatus
    tags: list[str]
    metadata: dict[str, Any]
    author_id: UUID
    published_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None
    version: int


class ContentPage(BaseModel):
    """One page of content; pass `next_cursor` as `cursor` for the next one (None: the end)."""

    items: list[ContentOut]
    next_cursor: str | None
