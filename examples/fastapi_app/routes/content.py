"""Educational content: drafts, edits, publishing, archiving and tag search."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Query, Response

from edu_domain import NotFound, PermissionDenied, ValidationError
from edu_domain.model import ContentStatus, ContentType, DifficultyLevel, EducationalContent
from edu_domain.services import ContentSearch, EduCore, NewContent
from examples.fastapi_app.dependencies import Caller, CallerDep, CoreDep
from examples.fastapi_app.http_utils import expected_version, set_etag
from examples.fastapi_app.pages import MAX_PAGE, MAX_SKIP
from examples.fastapi_app.policy import check_may_create_content, check_may_manage_content
from examples.fastapi_app.schemas.common import ERROR_RESPONSES
from examples.fastapi_app.schemas.content import (
    ContentCreate,
    ContentOut,
    ContentPage,
    ContentUpdate,
)

router = APIRouter(prefix="/content", tags=["content"], responses=ERROR_RESPONSES)

IfMatch = Annotated[
    str | None, Header(description="An ETag from a previous GET; 412 if the content changed")
]


async def _managed(core: EduCore, caller: Caller, content_id: UUID) -> EducationalContent:
    """The content, after checking the caller may change it."""
    content = await core.content.get(caller.scope, content_id)
    check_may_manage_content(caller, content)
    return content


def _out(response: Response, content: EducationalContent) -> ContentOut:
    set_etag(response, content)
    return ContentOut.model_validate(content)


@router.post("", status_code=201, summary="Create a draft authored by the caller")
async def create_draft(
    body: ContentCreate, caller: CallerDep, core: CoreDep, response: Response
) -> ContentOut:
    check_may_create_content(caller)
    content = await core.content.create_draft(
        caller.scope,
        NewContent(
            title=body.title,
            body=body.body,
            slug=body.slug,
            content_type=body.content_type,
            difficulty=body.difficulty,
            tags=tuple(body.tags),
            metadata=body.metadata,
        ),
    )
    response.headers["Location"] = f"/content/{content.id}"
    return _out(response, content)


@router.get("", summary="Search content: all given tags, type, difficulty, status; paged")
async def search_content(
    caller: CallerDep,
    core: CoreDep,
    tags: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006 - FastAPI copies it
    content_type: Annotated[ContentType | None, Query(alias="type")] = None,
    difficulty: DifficultyLevel | None = None,
    status: ContentStatus | None = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in the title")] = None,
    skip: Annotated[int, Query(ge=0, le=MAX_SKIP)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
) -> ContentPage:
    """Content carrying every one of `tags` (repeat the parameter), newest first. Pass the
    returned `next_cursor` as `cursor` for the next page (then leave `skip` at 0)."""
    if cursor is not None and skip:
        raise ValidationError("cursor", "use either skip or a cursor, not both")
    page = await core.content.search(
        caller.scope,
        ContentSearch(
            tags=tuple(tags),
            content_type=content_type,
            difficulty=difficulty,
            status=status,
            text=q,
            skip=skip,
            limit=limit,
            cursor=cursor,
        ),
    )
    return ContentPage(
        items=[ContentOut.model_validate(c) for c in page.items], next_cursor=page.next_cursor
    )


@router.get("/by-slug/{slug}", summary="Content by its slug")
async def get_by_slug(
    slug: str, caller: CallerDep, core: CoreDep, response: Response
) -> ContentOut:
    return _out(response, await core.content.get_by_slug(caller.scope, slug))


@router.get("/{content_id}", summary="Content by id")
async def get_content(
    content_id: UUID, caller: CallerDep, core: CoreDep, response: Response
) -> ContentOut:
    return _out(response, await core.content.get(caller.scope, content_id))


@router.patch("/{content_id}", summary="Change content; send If-Match to avoid lost updates")
async def update_content(
    content_id: UUID,
    body: ContentUpdate,
    caller: CallerDep,
    core: CoreDep,
    response: Response,
    if_match: IfMatch = None,
) -> ContentOut:
    await _managed(core, caller, content_id)
    content = await core.content.update(
        caller.scope,
        content_id,
        body.model_dump(exclude_unset=True),
        expected_version=expected_version(if_match),
    )
    return _out(response, content)


@router.post("/{content_id}/publish", summary="Publish a draft")
async def publish(
    content_id: UUID, caller: CallerDep, core: CoreDep, response: Response
) -> ContentOut:
    """Refused (403) when the author's role may not publish, e.g. a student's draft."""
    await _managed(core, caller, content_id)
    return _out(response, await core.content.publish(caller.scope, content_id))


@router.post("/{content_id}/archive", summary="Archive content")
async def archive(
    content_id: UUID, caller: CallerDep, core: CoreDep, response: Response
) -> ContentOut:
    await _managed(core, caller, content_id)
    return _out(response, await core.content.archive(caller.scope, content_id))


@router.delete("/{content_id}", status_code=204, summary="Delete content (soft by default)")
async def delete_content(
    content_id: UUID, caller: CallerDep, core: CoreDep, hard: bool = False
) -> Response:
    """Hard deletes are for administrators."""
    if hard and not caller.is_admin:
        raise PermissionDenied("only administrators may hard-delete")
    await _managed(core, caller, content_id)
    if not await core.content.delete(caller.scope, content_id, hard=hard):
        raise NotFound("EducationalContent", content_id)
    return Response(status_code=204)
