"""Educational content: drafts, edits, publishing, archiving and tag search."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Path, Query, Response

from edu_domain import InvalidState, NotFound, ValidationError
from edu_domain.model import ContentStatus, ContentType, DifficultyLevel, EducationalContent
from edu_domain.model.rules import TAGS_MAX
from edu_domain.services import ContentSearch, NewContent
from examples.fastapi_app.dependencies import CallerDep, CoreDep
from examples.fastapi_app.http_utils import expected_version, set_etag
from examples.fastapi_app.pages import MAX_PAGE, MAX_SKIP, check_paging, cursor_errors_as_400
from examples.fastapi_app.schemas.common import BODY, SIGNED_IN, created, errors, tagged
from examples.fastapi_app.schemas.content import (
    ContentCreate,
    ContentOut,
    ContentPage,
    ContentUpdate,
)
from examples.fastapi_app.schemas.fields import ContentSlug, Cursor, SearchText, Tag

router = APIRouter(prefix="/content", tags=["content"])

IfMatch = Annotated[
    str | None, Header(description="An ETag from a previous answer; 412 if the content changed")
]
_CHANGE = {**tagged(), **errors(*SIGNED_IN, 403, 404, 409)}


def _out(response: Response, content: EducationalContent) -> ContentOut:
    set_etag(response, content)
    return ContentOut.model_validate(content)


@router.post(
    "",
    status_code=201,
    summary="Create a draft authored by the caller (not parents)",
    responses={**created(), **errors(*SIGNED_IN, *BODY, 403, 409)},
)
async def create_draft(
    body: ContentCreate, caller: CallerDep, core: CoreDep, response: Response
) -> ContentOut:
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


@router.get(
    "",
    summary="Search content: all given tags, type, difficulty, status; paged",
    responses=errors(*SIGNED_IN, 400),
)
async def search_content(
    caller: CallerDep,
    core: CoreDep,
    tags: Annotated[list[Tag], Query(max_length=TAGS_MAX)] = [],  # noqa: B006 - FastAPI copies it
    content_type: Annotated[ContentType | None, Query(alias="type")] = None,
    difficulty: DifficultyLevel | None = None,
    status: ContentStatus | None = None,
    q: Annotated[SearchText | None, Query()] = None,
    skip: Annotated[int, Query(ge=0, le=MAX_SKIP)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    cursor: Annotated[Cursor | None, Query()] = None,
) -> ContentPage:
    """Content carrying every one of `tags` (repeat the parameter), newest first. Pass the
    returned `next_cursor` as `cursor` for the next page (then leave `skip` at 0)."""
    check_paging(skip, cursor)
    with cursor_errors_as_400():
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


@router.get(
    "/by-slug/{slug}",
    summary="Content by its slug",
    responses={**tagged(), **errors(*SIGNED_IN, 404)},
)
async def get_by_slug(
    slug: Annotated[ContentSlug, Path()], caller: CallerDep, core: CoreDep, response: Response
) -> ContentOut:
    return _out(response, await core.content.get_by_slug(caller.scope, slug))


@router.get(
    "/{content_id:uuid}",
    summary="Content by id",
    responses={**tagged(), **errors(*SIGNED_IN, 404)},
)
async def get_content(
    content_id: UUID, caller: CallerDep, core: CoreDep, response: Response
) -> ContentOut:
    return _out(response, await core.content.get(caller.scope, content_id))


@router.patch(
    "/{content_id:uuid}",
    summary="Change content; send If-Match to avoid lost updates",
    responses={**tagged(), **errors(*SIGNED_IN, *BODY, 403, 404, 409, 412)},
)
async def update_content(
    content_id: UUID,
    body: ContentUpdate,
    caller: CallerDep,
    core: CoreDep,
    response: Response,
    if_match: IfMatch = None,
) -> ContentOut:
    """The author, staff and administrators."""
    content = await core.content.update(
        caller.scope,
        content_id,
        body.model_dump(exclude_unset=True),
        expected_version=await expected_version(
            if_match, lambda: core.content.get(caller.scope, content_id)
        ),
    )
    return _out(response, content)


@router.post("/{content_id:uuid}/publish", summary="Publish a draft", responses=_CHANGE)
async def publish(
    content_id: UUID, caller: CallerDep, core: CoreDep, response: Response
) -> ContentOut:
    """The caller's role decides: teachers publish their own drafts, staff and administrators
    anyone's; students, assistants and parents none (403). Refused (409) when the content is
    not ready, e.g. a lesson without a body."""
    try:
        published = await core.content.publish(caller.scope, content_id)
    except ValidationError as error:  # about the stored content: the request carried none
        raise InvalidState(error.message) from None
    return _out(response, published)


@router.post("/{content_id:uuid}/archive", summary="Archive content", responses=_CHANGE)
async def archive(
    content_id: UUID, caller: CallerDep, core: CoreDep, response: Response
) -> ContentOut:
    """The author, staff and administrators."""
    return _out(response, await core.content.archive(caller.scope, content_id))


@router.delete(
    "/{content_id:uuid}",
    status_code=204,
    summary="Delete content (soft by default)",
    responses=errors(*SIGNED_IN, 403, 404, 409),
)
async def delete_content(
    content_id: UUID, caller: CallerDep, core: CoreDep, hard: bool = False
) -> Response:
    """Soft: the author, staff and administrators; hard: administrators."""
    if not await core.content.delete(caller.scope, content_id, hard=hard):
        raise NotFound("EducationalContent", content_id)
    return Response(status_code=204)
