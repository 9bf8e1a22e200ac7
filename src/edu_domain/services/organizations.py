"""Organizations (tenants): provisioning is operator work, outside any tenant, so it uses
unscoped units of work and no actor check (a host guards it, e.g. with an operator key);
renaming is an administrator's."""

from __future__ import annotations

from uuid import UUID

from attrs import evolve

from edu_domain.errors import NotFound
from edu_domain.model.events import UserRegistered
from edu_domain.model.organization import Organization
from edu_domain.model.rules import slugify
from edu_domain.model.user import UserRole, UserStatus
from edu_domain.policy import check_rename_organization
from edu_domain.query import Page, Query
from edu_domain.services.acting import acting
from edu_domain.services.commands import NewUser, require_command
from edu_domain.services.context import Scope
from edu_domain.services.deps import Deps
from edu_domain.services.users import build_account, hash_for
from edu_domain.services.views import UserAccount


class OrganizationService:
    def __init__(self, deps: Deps) -> None:
        self._d = deps

    async def create(
        self, name: str, slug: str | None = None, *, actor: UUID | None = None
    ) -> Organization:
        """A new active organization; the slug defaults to one derived from the name."""
        org = Organization(
            id=self._d.ids.new_id(),
            name=name,
            slug=slug if slug is not None else _default_slug(name),
        )
        async with self._d.uow.unscoped(actor=actor) as uow:
            await uow.add(org)
            await uow.commit()
        return org

    async def bootstrap(
        self, name: str, admin: NewUser, *, slug: str | None = None, actor: UUID | None = None
    ) -> tuple[Organization, UserAccount]:
        """A new organization with its first administrator, in one transaction.

        The administrator is active and verified (an operator vouches for them); if the
        user is invalid or clashes, no organization is left behind.
        """
        org = Organization(
            id=self._d.ids.new_id(),
            name=name,
            slug=slug if slug is not None else _default_slug(name),
        )
        admin = require_command(admin, NewUser, "admin")
        first = evolve(admin, role=UserRole.ADMIN, status=UserStatus.ACTIVE, email_verified=True)
        user, profile = build_account(self._d, org.id, first, await hash_for(first, self._d))
        async with self._d.uow.unscoped(actor=actor) as uow:
            await uow.add(org)
            await uow.add(user)
            await uow.add(profile)
            user.record(UserRegistered(organization_id=org.id, user_id=user.id, email=user.email))
            await uow.commit()
        return org, UserAccount(user, profile)

    async def get(self, organization_id: UUID) -> Organization:
        async with self._d.uow.unscoped(read_only=True) as uow:
            return await uow.require(Organization, organization_id)

    async def get_by_slug(self, slug: str) -> Organization:
        async with self._d.uow.unscoped(read_only=True) as uow:
            org = await uow.first(Organization, Query.where(slug=slug))
        if org is None:
            raise NotFound("Organization", slug)
        return org

    async def list(self, *, skip: int = 0, limit: int = 100) -> Page[Organization]:
        async with self._d.uow.unscoped(read_only=True) as uow:
            return await uow.find(Organization, Query().order_by("name").page(skip, limit))

    async def rename(self, scope: Scope, name: str) -> Organization:
        """Rename the scope's organization: its administrators (or the system)."""
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            check_rename_organization(await acting(uow, scope))
            org = await uow.require(Organization, scope.organization_id)
            org.rename(name)
            await uow.commit()
        return org


def _default_slug(name: object) -> str:
    """A slug derived from the name (the name itself is validated by the entity)."""
    return (slugify(name, 63) if isinstance(name, str) else "") or "org"
