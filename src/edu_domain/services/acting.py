"""Who acts in a use case, and the invariant that an organization keeps an administrator.

The actor is read in the use case's own unit of work (their role and status *now*, not as
a caller remembers them); reads that go through the cache read the actor through it too.
"""

from __future__ import annotations

from uuid import UUID

from edu_domain.caching import CacheKey
from edu_domain.errors import InvalidState, NotFound, PermissionDenied
from edu_domain.model.organization import Organization, OrganizationStatus
from edu_domain.model.user import User, UserRole, UserStatus
from edu_domain.policy import Actor
from edu_domain.ports import UnitOfWork
from edu_domain.query import F, Query
from edu_domain.services.context import Scope
from edu_domain.services.deps import Deps

#: Accounts that can neither sign in nor act.
INACTIVE = frozenset({UserStatus.SUSPENDED, UserStatus.DEACTIVATED})
ACTIVE_ADMINS = Query.where(role=UserRole.ADMIN, status=UserStatus.ACTIVE)
LAST_ADMIN = "an organization keeps at least one active administrator"


def _no_actor() -> PermissionDenied:
    return PermissionDenied(
        "this use case needs an acting user, Scope(org_id, user_id), or Scope.system(org_id)"
    )


def member(user: User | None) -> Actor:
    """The actor a loaded user is, if they may act at all."""
    if user is None or user.status in INACTIVE:
        raise PermissionDenied("the acting user is not an active member of this organization")
    return Actor.member(user.id, user.role)


def check_someone_acts(scope: Scope) -> None:
    """PermissionDenied for an anonymous scope, before anything else is looked at."""
    if not scope.is_system and scope.actor_id is None:
        raise _no_actor()


def is_open(org: Organization | None) -> bool:
    """Whether the organization's members act: it exists and is not suspended."""
    return org is not None and org.status is OrganizationStatus.ACTIVE


def check_open(org: Organization | None) -> None:
    """Members of a suspended organization do not act (its open sessions included): the
    system actor still does, to repair or reactivate it."""
    if not is_open(org):
        raise PermissionDenied("the organization is not active")


async def acting(uow: UnitOfWork, scope: Scope, org: Organization | None = None) -> Actor:
    """The scope's actor, read in `uow`; PermissionDenied for an anonymous scope. `org`:
    the scope's organization if the use case has read it in `uow` already (one read less)."""
    if scope.is_system:
        return Actor.system()
    if scope.actor_id is None:
        raise _no_actor()
    check_open(org if org is not None else await uow.get(Organization, scope.organization_id))
    return member(await uow.get(User, scope.actor_id))


async def load_user(deps: Deps, scope: Scope, user_id: UUID) -> User:
    """A user in a unit of work of its own (what `users.get` caches), or NotFound."""
    async with deps.uow(tenant=scope.organization_id, actor=scope.actor_id, read_only=True) as uow:
        return await uow.require(User, user_id)


def user_key(scope: Scope, user_id: UUID) -> CacheKey:
    return CacheKey("user", scope.organization_id, (str(user_id),))


async def _load_org(deps: Deps, scope: Scope) -> Organization:
    async with deps.uow(tenant=scope.organization_id, read_only=True) as uow:
        return await uow.require(Organization, scope.organization_id)


async def acting_cached(deps: Deps, scope: Scope) -> Actor:
    """The scope's actor for a cached read: through the same cache entry as `users.get`."""
    if scope.is_system:
        return Actor.system()
    actor_id = scope.actor_id
    if actor_id is None:
        raise _no_actor()
    try:  # the "org" namespace: dropped when the organization changes
        org: Organization | None = await deps.reads.fetch(
            CacheKey("org", scope.organization_id, ()),
            lambda: _load_org(deps, scope),
            Organization,
        )
    except NotFound:
        org = None
    check_open(org)
    try:
        user: User | None = await deps.reads.fetch(
            user_key(scope, actor_id), lambda: load_user(deps, scope, actor_id), User
        )
    except NotFound:
        user = None
    return member(user)


# ---------------------------------------------------------------------- the last administrator


def is_active_admin(user: User, *, verified: bool = False) -> bool:
    """An administrator who can act: active, and verified when sign-in needs it (`verified`):
    an unverified one cannot sign in, so does not keep the organization reachable."""
    return (
        user.role is UserRole.ADMIN
        and user.status is UserStatus.ACTIVE
        and (user.email_verified or not verified)
    )


async def lock_organization(uow: UnitOfWork, organization_id: UUID) -> Organization | None:
    """Hold the organization's row (PostgreSQL: FOR UPDATE) so that changes which could
    remove its last administrator run one at a time; the count that follows sees every
    change committed before. Returns the row (for `acting`)."""
    return await uow.get(Organization, organization_id, lock=True)


async def keep_an_administrator(
    uow: UnitOfWork, user: User, *, was_admin: bool, removed: bool = False, verified: bool = False
) -> None:
    """Refuse (InvalidState) a change that leaves no active administrator.

    `user` has been changed (or, `removed`, deleted) in `uow`; `was_admin` is whether they
    were an active administrator before (`is_active_admin` with the same `verified`: when
    sign-in needs a verified address, only verified administrators count). The change is
    flushed first: on SQLite that takes the write lock, so a concurrent change of another
    administrator waits for this commit.
    """
    if not was_admin or (is_active_admin(user, verified=verified) and not removed):
        return
    await uow.flush()
    admins = ACTIVE_ADMINS.and_where(email_verified=True) if verified else ACTIVE_ADMINS
    others = await uow.count(User, admins.and_where(F("id").ne(user.id)))
    if others == 0:
        raise InvalidState(LAST_ADMIN)
