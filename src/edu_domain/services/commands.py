"""Inputs of the use cases: plain values, validated when they become entities."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from attrs import field, frozen

from edu_domain.model.content import ContentType, DifficultyLevel
from edu_domain.model.user import UserRole, UserStatus


@frozen(kw_only=True)
class NewUser:
    """A user to create with their profile. Give `password` (hashed by the port) or an
    already `hashed_password` (imports, migrations)."""

    email: str
    username: str
    password: str | None = field(default=None, repr=False)
    hashed_password: str | None = field(default=None, repr=False)
    full_name: str | None = None
    role: UserRole | str = UserRole.STUDENT
    status: UserStatus | str = UserStatus.PENDING
    email_verified: bool = False
    bio: str | None = None
    skills: tuple[str, ...] | list[str] = ()
    avatar_url: str | None = None
    timezone: str = "UTC"
    locale: str = "en"


@frozen(kw_only=True)
class NewContent:
    """A draft to create; the slug is derived from the title when not given."""

    title: str
    body: str = ""
    slug: str | None = None
    content_type: ContentType | str = ContentType.LESSON
    difficulty: DifficultyLevel | str = DifficultyLevel.BEGINNER
    tags: tuple[str, ...] | list[str] = ()
    metadata: Mapping[str, Any] = field(factory=dict)
    author_id: UUID | None = None


#: Fields a partial update may change, per use case.
USER_UPDATABLE = frozenset({"email", "username", "full_name", "role", "status"})
PROFILE_UPDATABLE = frozenset({"bio", "skills", "avatar_url", "timezone", "locale"})
CONTENT_UPDATABLE = frozenset(
    {"title", "slug", "body", "content_type", "difficulty", "tags", "metadata"}
)
