"""Educational content: drafts, edits, publishing, archiving and search."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

from attrs import frozen

from edu_domain.caching import CacheKey
from edu_domain.errors import AlreadyExists, NotFound, ValidationError
from edu_domain.model.content import ContentStatus, ContentType, DifficultyLevel, EducationalContent
from edu_domain.model.rules import SLUG_MAX, normalize_tags, slugify
from edu_domain.model.user import User
from edu_domain.policy import (
    check_author,
    check_change_content,
    check_create_content,
    check_hard_delete_content,
    check_publish,
    check_restore_content,
)
from edu_domain.ports import UnitOfWork
from edu_domain.query import F, Filter, Page, Query
from edu_domain.services.acting import acting, acting_cached, check_someone_acts
from edu_domain.services.commands import (
    CONTENT_UPDATABLE,
    NewContent,
    as_dict,
    as_tuple,
    check_changes,
    check_version,
    require_command,
)
from edu_domain.services.context import Scope
from edu_domain.services.deps import Deps

_SLUG_ATTEMPTS = 5


@frozen(kw_only=True)
class ContentSearch:
    """Search criteria; every given criterion must hold. Tags: content has all of them."""

    tags: tuple[str, ...] | list[str] = ()
    content_type: ContentType | str | None = None
    difficulty: DifficultyLevel | str | None = None
    status: ContentStatus | str | None = None
    author_id: UUID | None = None
    text: str | None = None
    order_by: tuple[str, ...] = ("-created_at",)
    skip: int = 0
    limit: int = 20
    cursor: str | None = None

    def to_query(self) -> Query:
        parts: list[Filter] = []
        if self.tags:
            tags: Any = normalize_tags(as_tuple(self.tags, "tags"))
            parts.append(F("tags").contains_all(tags))
        for name in ("content_type", "difficulty", "status", "author_id"):
            value = getattr(self, name)
            if value is not None:
                parts.append(F(name).eq(value))
        if self.text:
            parts.append(F("title").icontains(self.text))
        query = Query.where(*parts).order_by(*self.order_by)
        if self.cursor is not None:
            return query.after(self.cursor, self.limit)
        return query.page(self.skip, self.limit)


class ContentService:
    """Drafts, edits, publishing, archiving and search; each checked against the policy."""

    def __init__(self, deps: Deps) -> None:
        self._d = deps

    async def create_draft(self, scope: Scope, new: NewContent) -> EducationalContent:
        """A draft authored by `new.author_id` (default: the actor), slug unique in the org.

        Authoring roles create drafts; for another author, staff and administrators. A
        derived slug gets a numeric suffix when taken; an explicit slug that is taken is
        AlreadyExists.
        """
        new = require_command(new, NewContent, "content")
        check_someone_acts(scope)
        author_id = new.author_id or scope.actor_id
        if author_id is None:
            raise ValidationError("author_id", "an author is required")
        explicit = new.slug is not None
        derived = slugify(new.title) if isinstance(new.title, str) else ""
        base = new.slug if new.slug is not None else (derived or "content")
        for attempt in range(_SLUG_ATTEMPTS):
            try:
                return await self._create(scope, new, author_id, base, explicit, attempt)
            except AlreadyExists as error:
                if explicit or error.field != "slug" or attempt == _SLUG_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _create(
        self,
        scope: Scope,
        new: NewContent,
        author_id: UUID,
        base: str,
        explicit: bool,
        attempt: int,
    ) -> EducationalContent:
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            check_create_content(await acting(uow, scope), new.author_id)
            check_author((await uow.require(User, author_id)).role)
            slug = base if explicit else await _free_slug(uow, base, attempt)
            content = EducationalContent(
                id=self._d.ids.new_id(),
                organization_id=scope.organization_id,
                title=new.title,
                slug=slug,
                body=new.body,
                content_type=new.content_type,
                difficulty=new.difficulty,
                tags=as_tuple(new.tags, "tags"),
                metadata=as_dict(new.metadata),
                author_id=author_id,
            )
            await uow.add(content)
            await uow.commit()
        return content

    async def create(self, scope: Scope, new: NewContent) -> EducationalContent:
        """The old API's name for `create_draft`."""
        return await self.create_draft(scope, new)

    async def get(self, scope: Scope, content_id: UUID) -> EducationalContent:
        async with self._d.uow(
            tenant=scope.organization_id, actor=scope.actor_id, read_only=True
        ) as uow:
            await acting(uow, scope)
            return await uow.require(EducationalContent, content_id)

    async def get_by_slug(self, scope: Scope, slug: str) -> EducationalContent:
        """Content by slug, read through the cache when one is configured."""

        async def load() -> EducationalContent:
            async with self._d.uow(
                tenant=scope.organization_id, actor=scope.actor_id, read_only=True
            ) as uow:
                content = await uow.first(EducationalContent, Query.where(slug=slug))
            if content is None:
                raise NotFound("EducationalContent", slug)
            return content

        await acting_cached(self._d, scope)
        if not isinstance(slug, str) or len(slug) > SLUG_MAX:
            raise NotFound("EducationalContent", "?")
        key = CacheKey("content_slug", scope.organization_id, (slug,))
        content: EducationalContent = await self._d.reads.fetch(key, load, EducationalContent)
        return content

    async def update(
        self,
        scope: Scope,
        content_id: UUID,
        changes: Mapping[str, Any],
        *,
        expected_version: int | None = None,
    ) -> EducationalContent:
        check_changes(changes, CONTENT_UPDATABLE)
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            actor = await acting(uow, scope)
            content = await uow.require(EducationalContent, content_id)
            check_change_content(actor, content, "edit")
            check_version(content, expected_version)
            content.ensure_editable()
            for name, value in changes.items():
                if name == "tags":
                    value = as_tuple(value, "tags")
                if name == "metadata" and isinstance(value, dict):
                    value = dict(value)
                setattr(content, name, value)
            await uow.commit()
        return content

    async def publish(self, scope: Scope, content_id: UUID) -> EducationalContent:
        """Draft -> published. The *caller's* role decides: teachers publish their own
        drafts, staff and administrators anyone's. Refuses an empty body."""
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            actor = await acting(uow, scope)
            content = await uow.require(EducationalContent, content_id)
            check_publish(actor, content)
            content.publish(self._d.clock.now())
            await uow.commit()
        return content

    async def archive(self, scope: Scope, content_id: UUID) -> EducationalContent:
        """The author, staff or administrators."""
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            actor = await acting(uow, scope)
            content = await uow.require(EducationalContent, content_id)
            check_change_content(actor, content, "archive")
            content.archive()
            await uow.commit()
        return content

    async def delete(self, scope: Scope, content_id: UUID, *, hard: bool = False) -> bool:
        """Soft: the author, staff or administrators; hard: administrators. False when
        there was nothing to delete."""
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            actor = await acting(uow, scope)
            if hard is not False:
                check_hard_delete_content(actor)
            content = await uow.get(EducationalContent, content_id, include_deleted=hard)
            if content is None:
                return False
            check_change_content(actor, content, "delete")
            await uow.delete(content, hard=hard)
            await uow.commit()
        return True

    async def restore(self, scope: Scope, content_id: UUID) -> EducationalContent:
        """Staff or administrators."""
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            check_restore_content(await acting(uow, scope))
            content = await uow.require(EducationalContent, content_id, include_deleted=True)
            if content.is_deleted:
                await uow.restore(content)
                await uow.commit()
        return content

    async def search(self, scope: Scope, search: ContentSearch) -> Page[EducationalContent]:
        query = require_command(search, ContentSearch, "search").to_query()
        async with self._d.uow(
            tenant=scope.organization_id, actor=scope.actor_id, read_only=True
        ) as uow:
            await acting(uow, scope)
            return await uow.find(EducationalContent, query)

    async def find_by_tags(
        self, scope: Scope, tags: Iterable[str], *, skip: int = 0, limit: int = 20
    ) -> Page[EducationalContent]:
        """Content carrying every one of `tags` (normalised like stored tags)."""
        return await self.search(
            scope, ContentSearch(tags=as_tuple(tags, "tags"), skip=skip, limit=limit)
        )

    async def find(self, scope: Scope, query: Query | None = None) -> Page[EducationalContent]:
        async with self._d.uow(
            tenant=scope.organization_id, actor=scope.actor_id, read_only=True
        ) as uow:
            await acting(uow, scope)
            return await uow.find(EducationalContent, query)

    async def count(self, scope: Scope, query: Query | None = None) -> int:
        async with self._d.uow(
            tenant=scope.organization_id, actor=scope.actor_id, read_only=True
        ) as uow:
            await acting(uow, scope)
            return await uow.count(EducationalContent, query)


async def _free_slug(uow: UnitOfWork, base: str, attempt: int) -> str:
    """`base`, or `base-N` with the smallest N not taken by live content."""
    taken = {
        c.slug
        async for c in uow.stream(EducationalContent, Query.where(F("slug").startswith(base)))
    }
    if base not in taken and attempt == 0:
        return base
    n = 2 + attempt
    while True:
        suffix = f"-{n}"
        candidate = base[: SLUG_MAX - len(suffix)].rstrip("-") + suffix
        if candidate not in taken:
            return candidate
        n += 1
