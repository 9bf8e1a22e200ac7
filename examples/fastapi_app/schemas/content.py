"""Educational content as the API shows it."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from edu_domain.model import ContentStatus, ContentType, DifficultyLevel
from edu_domain.model.rules import TAGS_MAX
from examples.fastapi_app.schemas.common import RequestModel, ResponseModel, omittable
from examples.fastapi_app.schemas.fields import Body, ContentSlug, Metadata, Tag, Title


class ContentCreate(RequestModel):
    """A draft authored by the caller; the slug is derived from the title when not given (or
    null). Tags are stored lower-cased and without duplicates."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "title": "Fractions for beginners",
                    "body": "A fraction names a part of a whole.",
                    "content_type": "lesson",
                    "difficulty": "beginner",
                    "tags": ["maths", "fractions"],
                    "metadata": {"grade": 4},
                }
            ]
        }
    )

    title: Title
    body: Body = ""
    slug: ContentSlug | None = None
    content_type: ContentType = ContentType.LESSON
    difficulty: DifficultyLevel = DifficultyLevel.BEGINNER
    tags: list[Tag] = Field(default_factory=list, max_length=TAGS_MAX)
    metadata: Metadata = Field(default_factory=dict)


class ContentUpdate(RequestModel):
    """Only the fields sent are changed, none may be null; archived content cannot be edited."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"title": "Fractions, step by step", "tags": ["maths"]}]}
    )

    title: Title = omittable()
    slug: ContentSlug = omittable()
    body: Body = omittable()
    content_type: ContentType = omittable()
    difficulty: DifficultyLevel = omittable()
    tags: list[Tag] = omittable(max_length=TAGS_MAX)
    metadata: Metadata = omittable()


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
