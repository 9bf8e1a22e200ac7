"""Organizations: operator bootstrap, the caller's organization and its statistics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from edu_domain import Query
from edu_domain.model import ContentStatus
from edu_domain.services import NewUser
from examples.fastapi_app.dependencies import CallerDep, CoreDep, require_bootstrap_key
from examples.fastapi_app.schemas.common import BODY, SIGNED_IN, created, errors
from examples.fastapi_app.schemas.organizations import (
    BootstrapOut,
    ContentStatisticsOut,
    OrganizationCreate,
    OrganizationOut,
    StatisticsOut,
    UserStatisticsOut,
)
from examples.fastapi_app.schemas.users import AccountOut

router = APIRouter(prefix="/organizations", tags=["organizations"])


@router.post(
    "",
    status_code=201,
    summary="Bootstrap an organization and its first administrator (operators only)",
    dependencies=[Depends(require_bootstrap_key)],
    responses={**created(etag=False), **errors(*BODY, 403, 409)},
)
async def create_organization(
    body: OrganizationCreate, core: CoreDep, response: Response
) -> BootstrapOut:
    """Requires the `X-Bootstrap-Key` header (env `EDU_BOOTSTRAP_KEY`). The administrator
    is created active and verified, since nobody else could vouch for them."""
    org, account = await core.organizations.bootstrap(
        body.name,
        NewUser(
            email=body.admin.email,
            username=body.admin.username,
            password=body.admin.password,
            full_name=body.admin.full_name,
        ),
        slug=body.slug,
    )
    response.headers["Location"] = "/organizations/current"
    return BootstrapOut(
        organization=OrganizationOut.model_validate(org),
        admin=AccountOut.of(account),
    )


@router.get("/current", summary="The caller's organization", responses=errors(*SIGNED_IN, 404))
async def current_organization(caller: CallerDep, core: CoreDep) -> OrganizationOut:
    return OrganizationOut.model_validate(
        await core.organizations.get(caller.principal.organization_id)
    )


@router.get(
    "/current/statistics",
    summary="User and content statistics (staff and administrators)",
    responses=errors(*SIGNED_IN, 403),
)
async def statistics(caller: CallerDep, core: CoreDep) -> StatisticsOut:
    users = await core.users.statistics(caller.scope)
    by_status = {
        status.value: await core.content.count(caller.scope, Query.where(status=status))
        for status in ContentStatus
    }
    return StatisticsOut(
        users=UserStatisticsOut.model_validate(users),
        content=ContentStatisticsOut(total=sum(by_status.values()), by_status=by_status),
    )
