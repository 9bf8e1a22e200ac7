"""Educational content: draft -> published -> archived."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar
from uuid import UUID

from attrs import define, field

from edu_domain.errors import InvalidState, ValidationError
from edu_domain.model import rules
from edu_domain.model.base import (
    Reference,
    TenantEntity,
    UniqueKey,
    check_uuid,
    enum_of,
    nullable,
    rule,
    to_enum,
)
from edu_domain.model.events import ContentArchived, ContentPublished
from edu_domain.model.user import User


class ContentType(StrEnum):
    LESSON = "lesson"
    QUIZ = "quiz"
    ARTICLE = "article"
    VIDEO = "video"
    EXERCISE = "exercise"
    ASSESSMENT = "assessment"
    COURSE = "course"


def _to_contenttype(value: object) -> object:
    return to_enum(ContentType)(value)


class DifficultyLevel(StrEnum):
    BEGINNER = "beginner"
    INTERMEDIATE = "intermediate"
    ADVANCED = "advanced"
    EXPERT = "expert"


def _to_difficultylevel(value: object) -> object:
    return to_enum(DifficultyLevel)(value)


class ContentStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    ARCHIVED = "archived"


def _to_contentstatus(value: object) -> object:
    return to_enum(ContentStatus)(value)


@define(slots=False, eq=False, kw_only=True)
class EducationalContent(TenantEntity):
    """A lesson, quiz, article, ... Its slug is unique among the organization's live content."""

    __unique__: ClassVar[tuple[UniqueKey, ...]] = (
        UniqueKey(fields=("organization_id", "slug"), reported_as="slug"),
    )
    __references__: ClassVar[tuple[Reference, ...]] = (
        Reference(field="author_id", target=User, on_delete="restrict"),
    )

    title: str = field(validator=rule(rules.check_display_text, max_len=rules.TITLE_MAX))
    slug: str = field(validator=rule(rules.check_slug))
    body: str = field(
        default="",
        validator=rule(rules.check_text, min_len=0, max_len=rules.BODY_MAX, multiline=True),
    )
    content_type: ContentType = field(
        default=ContentType.LESSON, converter=_to_contenttype, validator=enum_of(ContentType)
    )
    difficulty: DifficultyLevel = field(
        default=DifficultyLevel.BEGINNER,
        converter=_to_difficultylevel,
        validator=enum_of(DifficultyLevel),
    )
    status: ContentStatus = field(
        default=ContentStatus.DRAFT, converter=_to_contentstatus, validator=enum_of(ContentStatus)
    )
    tags: tuple[str, ...] = field(
        factory=tuple, converter=rules.normalize_tags, validator=rule(rules.check_tags)
    )
    metadata: dict[str, Any] = field(factory=dict, validator=rule(rules.check_metadata))
    author_id: UUID = field(validator=rule(check_uuid))
    published_at: datetime | None = field(default=None, validator=nullable(rules.check_aware))

    def ensure_editable(self) -> None:
        if self.status is ContentStatus.ARCHIVED:
            raise InvalidState("archived content cannot be edited")

    def publish(self, now: datetime) -> None:
        if self.status is not ContentStatus.DRAFT:
            raise InvalidState(f"only a draft can be published (this one is {self.status.value})")
        if not self.body.strip():
            raise ValidationError("body", "an empty lesson cannot be published")
        self.status = ContentStatus.PUBLISHED
        self.published_at = now
        self.record(
            ContentPublished(
                organization_id=self.organization_id, content_id=self.id, slug=self.slug
            )
        )

    def archive(self) -> None:
        if self.status is ContentStatus.ARCHIVED:
            raise InvalidState("content is already archived")
        self.status = ContentStatus.ARCHIVED
        self.record(ContentArchived(organization_id=self.organization_id, content_id=self.id))
