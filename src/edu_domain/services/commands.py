"""Inputs of the use cases: plain values, validated when they become entities."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar
from uuid import UUID

from attrs import field, frozen

from edu_domain.errors import ConcurrencyConflict, ValidationError
from edu_domain.model.base import Entity
from edu_domain.model.content import ContentType, DifficultyLevel
from edu_domain.model.user import UserRole, UserStatus

C = TypeVar("C")


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


def require_command(value: object, kind: type[C], name: str) -> C:
    """`value` if it is a `kind`; a ValidationError naming `name` otherwise."""
    if not isinstance(value, kind):
        raise ValidationError(name, f"must be a {kind.__name__}")
    return value


def as_tuple(value: object, name: str) -> tuple[Any, ...]:
    """A list-like input as a tuple; a string or mapping is not a list (no silent split)."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise ValidationError(name, "must be a list")
    return tuple(value)


def as_dict(value: object) -> Any:
    """A copy of a mapping; anything else is left for the entity's validator to refuse."""
    return dict(value) if isinstance(value, Mapping) else value


def check_changes(changes: Mapping[str, Any], allowed: frozenset[str]) -> None:
    """A partial update names only fields its use case may change."""
    if not isinstance(changes, Mapping):
        raise ValidationError("changes", "must be a mapping of field names to values")
    unknown = sorted(str(name) for name in changes if name not in allowed)
    if unknown:
        raise ValidationError(
            unknown[0], f"cannot be changed here (allowed: {', '.join(sorted(allowed))})"
        )


def check_version(entity: Entity, expected_version: int | None) -> None:
    """An If-Match check: the caller edited what it saw at `expected_version`."""
    if expected_version is not None and entity.version != expected_version:
        raise ConcurrencyConflict(type(entity).__name__, entity.id)
