"""Reading users: by id (cached), by email or username, pages, counts and statistics.

Every member of the organization may read its users; statistics are for staff and
administrators (`edu_domain.policy`). Which fields a reader may *see* is the host's to apply
with `policy.sees_contact_details`: the use cases return whole entities.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from edu_domain.caching import CacheKey
from edu_domain.model.rules import normalize_email, normalize_username
from edu_domain.model.session import LoginSession
from edu_domain.model.user import User, UserProfile, UserRole, UserStatus
from edu_domain.policy import check_statistics
from edu_domain.query import F, Page, Query
from edu_domain.services.acting import acting, acting_cached, load_user, user_key
from edu_domain.services.context import Scope
from edu_domain.services.deps import Deps
from edu_domain.services.queries import active_sessions_query
from edu_domain.services.views import UserAccount, UserStatistics


class UserReads:
    """The read half of `UserService`."""

    def __init__(self, deps: Deps) -> None:
        self._d = deps

    async def get(self, scope: Scope, user_id: UUID) -> User:
        """The user (read through the cache when one is configured), or NotFound."""
        await acting_cached(self._d, scope)
        key = user_key(scope, user_id)
        user: User = await self._d.reads.fetch(
            key, lambda: load_user(self._d, scope, user_id), User
        )
        return user

    async def get_account(self, scope: Scope, user_id: UUID) -> UserAccount:
        async with self._d.uow(
            tenant=scope.organization_id, actor=scope.actor_id, read_only=True
        ) as uow:
            await acting(uow, scope)
            user = await uow.require(User, user_id)
            profile = await uow.first(UserProfile, Query.where(user_id=user.id))
        return UserAccount(user, profile)

    async def get_by_email(self, scope: Scope, email: str) -> User | None:
        return await self._first(scope, Query.where(email=normalize_email(email)))

    async def get_by_username(self, scope: Scope, username: str) -> User | None:
        return await self._first(scope, Query.where(username=normalize_username(username)))

    async def get_active_users(
        self, scope: Scope, *, role: UserRole | str | None = None, skip: int = 0, limit: int = 20
    ) -> Page[User]:
        query = Query.where(status=UserStatus.ACTIVE)
        if role is not None:
            query = query.and_where(role=role)
        return await self.find(scope, query.order_by("-created_at").page(skip, limit))

    async def find(
        self, scope: Scope, query: Query | None = None, *, include_deleted: bool = False
    ) -> Page[User]:
        async with self._d.uow(
            tenant=scope.organization_id, actor=scope.actor_id, read_only=True
        ) as uow:
            await acting(uow, scope)
            return await uow.find(User, query, include_deleted=include_deleted)

    async def get_all(self, scope: Scope, *, skip: int = 0, limit: int = 100) -> Page[User]:
        return await self.find(scope, Query().order_by("created_at").page(skip, limit))

    async def count(self, scope: Scope, query: Query | None = None) -> int:
        async with self._d.uow(
            tenant=scope.organization_id, actor=scope.actor_id, read_only=True
        ) as uow:
            await acting(uow, scope)
            return await uow.count(User, query)

    async def _first(self, scope: Scope, query: Query) -> User | None:
        async with self._d.uow(
            tenant=scope.organization_id, actor=scope.actor_id, read_only=True
        ) as uow:
            await acting(uow, scope)
            return await uow.first(User, query)

    # ------------------------------------------------------------------ statistics

    async def statistics(self, scope: Scope) -> UserStatistics:
        """Users by role and status, verified, active sessions, new in the last 30 days."""
        check_statistics(await acting_cached(self._d, scope))

        async def load() -> UserStatistics:
            return await self._statistics(scope)

        key = CacheKey("stats", scope.organization_id, ("users",))
        stats: UserStatistics = await self._d.reads.fetch(key, load, UserStatistics)
        return stats

    async def get_user_statistics(self, scope: Scope) -> UserStatistics:
        """The old API's name for `statistics`."""
        return await self.statistics(scope)

    async def _statistics(self, scope: Scope) -> UserStatistics:
        now = self._d.clock.now()
        async with self._d.uow(
            tenant=scope.organization_id, actor=scope.actor_id, read_only=True
        ) as uow:
            tally = await uow.tally(
                User,
                ("role", "status"),
                measures={
                    "verified": F("email_verified").eq(True),
                    "new": F("created_at").ge(now - timedelta(days=30)),
                },
                totals={"sessions": (LoginSession, active_sessions_query(now))},
            )
        groups, sessions = tally.groups, tally.totals["sessions"]
        by_role: dict[str, int] = {}
        by_status: dict[str, int] = {}
        for group in groups:
            role, status = group.key
            by_role[str(role)] = by_role.get(str(role), 0) + group.count
            by_status[str(status)] = by_status.get(str(status), 0) + group.count
        total = sum(g.count for g in groups)
        verified = sum(g.measures["verified"] for g in groups)
        return UserStatistics(
            total=total,
            by_role=by_role,
            by_status=by_status,
            verified=verified,
            unverified=total - verified,
            active_sessions=sessions,
            new_last_30_days=sum(g.measures["new"] for g in groups),
        )
