"""Users of the caller's organization (the old quick reference's endpoints, and more)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Query, Response

from edu_domain import InvalidState, NotFound, ValidationError
from edu_domain import Query as Q
from edu_domain.model import UserRole, UserStatus
from edu_domain.policy import sees_contact_details
from edu_domain.services import NewUser
from examples.fastapi_app.dependencies import CallerDep, CoreDep
from examples.fastapi_app.http_utils import expected_version, set_etag
from examples.fastapi_app.pages import MAX_PAGE, MAX_SKIP, cursor_errors_as_400, paged
from examples.fastapi_app.policy import actor, visible
from examples.fastapi_app.schemas.common import BODY, SIGNED_IN, created, errors, tagged
from examples.fastapi_app.schemas.fields import Cursor
from examples.fastapi_app.schemas.users import (
    AccountOut,
    ProfileOut,
    ProfileUpdate,
    UserCreate,
    UserOut,
    UserPage,
    UserUpdate,
)

router = APIRouter(prefix="/users", tags=["users"])

IfMatch = Annotated[
    str | None, Header(description="An ETag from a previous answer; 412 if the user changed")
]


@router.post(
    "",
    status_code=201,
    summary="Register a user (administrators; staff: students, parents, assistants, teachers)",
    responses={**created(), **errors(*SIGNED_IN, *BODY, 403, 409)},
)
async def register(
    body: UserCreate, caller: CallerDep, core: CoreDep, response: Response
) -> AccountOut:
    """Creates the user with their profile and mails a verification link. Nobody creates a
    user with a role above their own (403)."""
    account = await core.users.register(
        caller.scope,
        NewUser(
            email=body.email,
            username=body.username,
            password=body.password,
            full_name=body.full_name,
            role=body.role,
            bio=body.bio,
            skills=tuple(body.skills),
            avatar_url=body.avatar_url,
            timezone=body.timezone,
            locale=body.locale,
        ),
    )
    response.headers["Location"] = f"/users/{account.user.id}"
    set_etag(response, account.user)
    return AccountOut.of(account)


@router.get(
    "",
    summary="List users, filtered by role and status, by page or cursor",
    responses=errors(*SIGNED_IN, 400),
)
async def list_users(
    caller: CallerDep,
    core: CoreDep,
    role: UserRole | None = None,
    status: UserStatus | None = None,
    skip: Annotated[int, Query(ge=0, le=MAX_SKIP)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    cursor: Annotated[Cursor | None, Query()] = None,
) -> UserPage:
    """Oldest first. Pass the returned `next_cursor` as `cursor` for the next page (then leave
    `skip` at 0)."""
    query = Q()
    if role is not None:
        query = query.and_where(role=role)
    if status is not None:
        query = query.and_where(status=status)
    with cursor_errors_as_400():
        page = await core.users.find(
            caller.scope, paged(query.order_by("created_at"), skip, limit, cursor)
        )
    return UserPage(items=[visible(caller, u) for u in page.items], next_cursor=page.next_cursor)


@router.get(
    "/{user_id:uuid}",
    summary="One user of the caller's organization",
    responses={**tagged(), **errors(*SIGNED_IN, 404)},
)
async def get_user(user_id: UUID, caller: CallerDep, core: CoreDep, response: Response) -> UserOut:
    user = await core.users.get(caller.scope, user_id)
    out = visible(caller, user)
    if out.version is not None:  # no tag for whom the version is hidden
        set_etag(response, user)
    return out


@router.patch(
    "/{user_id:uuid}",
    summary="Change a user; send If-Match to avoid lost updates",
    responses={**tagged(), **errors(*SIGNED_IN, *BODY, 403, 404, 409, 412)},
)
async def update_user(
    user_id: UUID,
    body: UserUpdate,
    caller: CallerDep,
    core: CoreDep,
    response: Response,
    if_match: IfMatch = None,
) -> UserOut:
    """Everyone may change their own `full_name`; the rest takes a manager of the user's role
    (administrators; staff for the roles below theirs), who grants only roles they manage (403).
    Demoting or suspending the organization's last active administrator is a 409."""
    changes = body.model_dump(exclude_unset=True)
    if not sees_contact_details(actor(caller), user_id):
        if_match = None  # its version is hidden from them (it moves at sign-in): no 412 oracle
    expected = await expected_version(if_match, lambda: core.users.get(caller.scope, user_id))
    user = await core.users.update(caller.scope, user_id, changes, expected_version=expected)
    set_etag(response, user)
    return UserOut.of(user)


@router.delete(
    "/{user_id:uuid}",
    status_code=204,
    summary="Delete a user (soft by default; managers of the user's role)",
    responses=errors(*SIGNED_IN, 403, 404, 409),
)
async def delete_user(
    user_id: UUID, caller: CallerDep, core: CoreDep, hard: bool = False
) -> Response:
    """A soft delete keeps the row (restorable) and revokes the user's sessions. Refused (409):
    deleting one's own account or the last active administrator, and a hard delete of a user
    who authored content (delete the content first)."""
    try:
        deleted = await core.users.delete(caller.scope, user_id, hard=hard)
    except ValidationError as error:
        if error.field != "author_id":
            raise
        raise InvalidState("the user authored content: delete it first") from None
    if not deleted:
        raise NotFound("User", user_id)
    return Response(status_code=204)


@router.post(
    "/{user_id:uuid}/restore",
    summary="Restore a soft-deleted user (managers of the user's role)",
    responses={**tagged(), **errors(*SIGNED_IN, 403, 404, 409)},
)
async def restore_user(
    user_id: UUID, caller: CallerDep, core: CoreDep, response: Response
) -> UserOut:
    user = await core.users.restore(caller.scope, user_id)
    set_etag(response, user)
    return UserOut.of(user)


@router.post(
    "/{user_id:uuid}/verify",
    summary="Mark a user's email verified (managers of the user's role)",
    responses={**tagged(), **errors(*SIGNED_IN, 403, 404, 409)},
)
async def verify_user(
    user_id: UUID, caller: CallerDep, core: CoreDep, response: Response
) -> UserOut:
    await core.verification.mark_verified(caller.scope, user_id)
    user = await core.users.get(caller.scope, user_id)
    set_etag(response, user)
    return UserOut.of(user)


@router.get(
    "/{user_id:uuid}/profile",
    summary="A user's profile",
    responses=errors(*SIGNED_IN, 404),
)
async def get_profile(user_id: UUID, caller: CallerDep, core: CoreDep) -> ProfileOut:
    account = await core.users.get_account(caller.scope, user_id)
    if account.profile is None:
        raise NotFound("UserProfile", user_id)
    return ProfileOut.of(account.profile)


@router.patch(
    "/{user_id:uuid}/profile",
    summary="Change a profile (own, or of a user whose role the caller manages)",
    responses=errors(*SIGNED_IN, *BODY, 403, 404, 409),
)
async def update_profile(
    user_id: UUID, body: ProfileUpdate, caller: CallerDep, core: CoreDep
) -> ProfileOut:
    profile = await core.users.update_profile(
        caller.scope, user_id, body.model_dump(exclude_unset=True)
    )
    return ProfileOut.of(profile)
