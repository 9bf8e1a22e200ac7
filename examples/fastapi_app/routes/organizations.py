"""Organizations: operator bootstrap, the caller's organization and its statistics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from edu_domain import DomainError, Query
from edu_domain.model import ContentStatus, Organization, UserRole, UserStatus
from edu_domain.services import EduCore, NewUser, Scope
from examples.fastapi_app.dependencies import (
    AdminDep,
    CallerDep,
    CoreDep,
    require_bootstrap_key,
)
from examples.fastapi_app.schemas.common import ERROR_RESPONSES
from examples.fastapi_app.schemas.organizations import (
    BootstrapOut,
    ContentStatisticsOut,
    OrganizationCreate,
    OrganizationOut,
    StatisticsOut,
    UserStatisticsOut,
)
from examples.fastapi_app.schemas.users import AccountOut

router = APIRouter(prefix="/organizations", tags=["organizations"], responses=ERROR_RESPONSES)


@router.post(
    "",
    status_code=201,
    summary="Bootstrap an organization and its first administrator (operators only)",
    dependencies=[Depends(require_bootstrap_key)],
)
async def create_organization(
    body: OrganizationCreate, core: CoreDep, response: Response
) -> BootstrapOut:
    """Requires the `X-Bootstrap-Key` header (env `EDU_BOOTSTRAP_KEY`). The administrator
    is created active and verified, since nobody else could vouch for them."""
    org = await core.organizations.create(body.name, body.slug)
    try:
        account = await core.users.register(
            Scope(org.id),
            NewUser(
                email=body.admin.email,
                username=body.admin.username,
                password=body.admin.password,
                full_name=body.admin.full_name,
                role=UserRole.ADMIN,
                status=UserStatus.ACTIVE,
                email_verified=True,
            ),
            send_verification=False,
        )
    except DomainError:
        await _discard(core, org)
        raise
    response.headers["Location"] = "/organizations/current"
    return BootstrapOut(
        organization=OrganizationOut.model_validate(org),
        admin=AccountOut.of(account),
    )


async def _discard(core: EduCore, org: Organization) -> None:
    """Undo a half-done bootstrap, so a rejected admin does not leave an org without one."""
    async with core.deps.uow.unscoped() as uow:
        stored = await uow.get(Organization, org.id)
        if stored is not None:
            await uow.delete(stored, hard=True)
            await uow.commit()


@router.get("/current", summary="The caller's organization")
async def current_organization(caller: CallerDep, core: CoreDep) -> OrganizationOut:
    return OrganizationOut.model_validate(
        await core.organizations.get(caller.principal.organization_id)
    )


@router.get("/current/statistics", summary="User and content statistics (administrators)")
async def statistics(caller: AdminDep, core: CoreDep) -> StatisticsOut:
    users = await core.users.statistics(caller.scope)
    by_status = {
        status.value: await core.content.count(caller.scope, Query.where(status=status))
        for status in ContentStatus
    }
    return StatisticsOut(
        users=UserStatisticsOut.model_validate(users),
        content=ContentStatisticsOut(total=sum(by_status.values()), by_status=by_status),
    )
