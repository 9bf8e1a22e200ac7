"""User use cases: register, read, update, delete/restore, bulk create, statistics."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID

from edu_domain.caching import CacheKey
from edu_domain.errors import NotFound, ValidationError
from edu_domain.model.events import (
    EmailVerificationRequested,
    UserDeleted,
    UserRegistered,
    UserRestored,
)
from edu_domain.model.organization import Organization, OrganizationStatus
from edu_domain.model.rules import normalize_email, normalize_username
from edu_domain.model.session import LoginSession, TokenPurpose
from edu_domain.model.user import User, UserProfile, UserRole, UserStatus
from edu_domain.ports import UnitOfWork
from edu_domain.query import F, Page, Query
from edu_domain.services.commands import (
    PROFILE_UPDATABLE,
    USER_UPDATABLE,
    NewUser,
    as_tuple,
    check_changes,
    check_version,
    require_command,
)
from edu_domain.services.context import Scope
from edu_domain.services.deps import Deps
from edu_domain.services.mail_tokens import issue_mail_token
from edu_domain.services.passwords import check_password, hash_password
from edu_domain.services.queries import active_sessions, active_sessions_query
from edu_domain.services.views import UserAccount, UserStatistics


class UserService:
    """Everything the old `UserRepository` did, as use cases over the unit of work."""

    def __init__(self, deps: Deps) -> None:
        self._d = deps

    # ------------------------------------------------------------------ create

    async def register(
        self, scope: Scope, new: NewUser, *, send_verification: bool = True
    ) -> UserAccount:
        """Create a user and their profile in one transaction; mail a verification link."""
        new = require_command(new, NewUser, "user")
        hashed = await hash_for(new, self._d)
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            await _require_active_org(uow, scope.organization_id)
            user, profile = build_account(self._d, scope.organization_id, new, hashed)
            await uow.add(user)
            await uow.add(profile)
            user.record(
                UserRegistered(
                    organization_id=user.organization_id, user_id=user.id, email=user.email
                )
            )
            if send_verification and not user.email_verified:
                await issue_verification(uow, self._d, user)
            await uow.commit()
        return UserAccount(user, profile)

    async def create_user_with_profile(self, scope: Scope, new: NewUser) -> UserAccount:
        """The old API's name for `register`."""
        return await self.register(scope, new)

    async def create_many(self, scope: Scope, users: Sequence[NewUser]) -> list[UserAccount]:
        """Bulk create users with profiles in one transaction by the adapter's fastest path."""
        users = [require_command(new, NewUser, "users") for new in as_tuple(users, "users")]
        if not users:
            return []
        for new in users:  # every input is checked before any (slow) hashing starts
            _password_to_hash(new, self._d)
        hashes = await asyncio.gather(*(hash_for(new, self._d) for new in users))
        built = [
            build_account(self._d, scope.organization_id, new, hashed)
            for new, hashed in zip(users, hashes, strict=True)
        ]
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            await _require_active_org(uow, scope.organization_id)
            await uow.add_all([user for user, _ in built])
            await uow.add_all([profile for _, profile in built])
            await uow.commit()
        return [UserAccount(user, profile) for user, profile in built]

    # ------------------------------------------------------------------ read

    async def get(self, scope: Scope, user_id: UUID) -> User:
        """The user (read through the cache when one is configured), or NotFound."""

        async def load() -> User:
            async with self._d.uow(
                tenant=scope.organization_id, actor=scope.actor_id, read_only=True
            ) as uow:
                return await uow.require(User, user_id)

        key = CacheKey("user", scope.organization_id, (str(user_id),))
        user: User = await self._d.reads.fetch(key, load, User)
        return user

    async def get_account(self, scope: Scope, user_id: UUID) -> UserAccount:
        async with self._d.uow(
            tenant=scope.organization_id, actor=scope.actor_id, read_only=True
        ) as uow:
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
            return await uow.find(User, query, include_deleted=include_deleted)

    async def get_all(self, scope: Scope, *, skip: int = 0, limit: int = 100) -> Page[User]:
        return await self.find(scope, Query().order_by("created_at").page(skip, limit))

    async def count(self, scope: Scope, query: Query | None = None) -> int:
        async with self._d.uow(
            tenant=scope.organization_id, actor=scope.actor_id, read_only=True
        ) as uow:
            return await uow.count(User, query)

    async def _first(self, scope: Scope, query: Query) -> User | None:
        async with self._d.uow(
            tenant=scope.organization_id, actor=scope.actor_id, read_only=True
        ) as uow:
            return await uow.first(User, query)

    # ------------------------------------------------------------------ update

    async def update(
        self,
        scope: Scope,
        user_id: UUID,
        changes: Mapping[str, Any],
        *,
        expected_version: int | None = None,
    ) -> User:
        """Partial update of the listed fields; all or nothing.

        `expected_version` (an HTTP If-Match) turns a lost update into ConcurrencyConflict.
        A new email address is unverified until its owner follows the link mailed to it.
        """
        check_changes(changes, USER_UPDATABLE)
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            user = await uow.require(User, user_id)
            check_version(user, expected_version)
            old_email = user.email
            for name, value in changes.items():
                setattr(user, name, value)
            if user.email != old_email:
                user.email_verified = False
                user.email_verified_at = None
                await issue_verification(uow, self._d, user)
            await uow.commit()
        return user

    async def update_profile(
        self, scope: Scope, user_id: UUID, changes: Mapping[str, Any]
    ) -> UserProfile:
        check_changes(changes, PROFILE_UPDATABLE)
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            await uow.require(User, user_id)
            profile = await uow.first(UserProfile, Query.where(user_id=user_id))
            if profile is None:
                raise NotFound("UserProfile", user_id)
            for name, value in changes.items():
                setattr(profile, name, as_tuple(value, name) if name == "skills" else value)
            await uow.commit()
        return profile

    # ------------------------------------------------------------------ delete / restore

    async def delete(self, scope: Scope, user_id: UUID, *, hard: bool = False) -> bool:
        """Soft delete (recording who) or hard delete; revokes the user's sessions.

        Returns False when there was nothing to delete (already deleted or missing).
        """
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            user = await uow.get(User, user_id, include_deleted=hard)
            if user is None:
                return False
            if not hard:
                now = self._d.clock.now()
                for session in await active_sessions(uow, user.id, now):
                    session.revoke(now)
            user.record(
                UserDeleted(organization_id=user.organization_id, user_id=user.id, hard=hard)
            )
            await uow.delete(user, hard=hard)
            await uow.commit()
        return True

    async def restore(self, scope: Scope, user_id: UUID) -> User:
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            user = await uow.require(User, user_id, include_deleted=True)
            if user.is_deleted:
                await uow.restore(user)
                user.record(UserRestored(organization_id=user.organization_id, user_id=user.id))
                await uow.commit()
        return user

    # ------------------------------------------------------------------ statistics

    async def statistics(self, scope: Scope) -> UserStatistics:
        """Users by role and status, verified, active sessions, new in the last 30 days."""

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


# ---------------------------------------------------------------------- shared helpers


async def _require_active_org(uow: UnitOfWork, organization_id: UUID) -> Organization:
    org = await uow.require(Organization, organization_id)
    if org.status is not OrganizationStatus.ACTIVE:
        raise ValidationError("organization_id", f"organization is {org.status.value}")
    return org


def _password_to_hash(new: NewUser, deps: Deps) -> str | None:
    """The checked password to hash, or None when the user comes pre-hashed."""
    if (new.password is None) == (new.hashed_password is None):
        raise ValidationError("password", "give exactly one of password or hashed_password")
    if new.password is not None:
        return check_password(new.password, deps.policy)
    return None


async def hash_for(new: NewUser, deps: Deps) -> str:
    """The password hash for a new user: hashed by the port, or given pre-hashed."""
    password = _password_to_hash(new, deps)
    if password is None:
        assert new.hashed_password is not None
        return new.hashed_password
    return await hash_password(deps.hasher, password)


def build_account(
    deps: Deps, organization_id: UUID, new: NewUser, hashed: str
) -> tuple[User, UserProfile]:
    """A validated user and profile, not yet added to any unit of work."""
    now = deps.clock.now()
    user = User(
        id=deps.ids.new_id(),
        organization_id=organization_id,
        email=new.email,
        username=new.username,
        hashed_password=hashed,
        full_name=new.full_name,
        role=new.role,
        status=new.status,
        email_verified=new.email_verified,
        email_verified_at=now if new.email_verified else None,
    )
    profile = UserProfile(
        id=deps.ids.new_id(),
        organization_id=organization_id,
        user_id=user.id,
        bio=new.bio,
        skills=as_tuple(new.skills, "skills"),
        avatar_url=new.avatar_url,
        timezone=new.timezone,
        locale=new.locale,
    )
    return user, profile


async def issue_verification(uow: UnitOfWork, deps: Deps, user: User) -> None:
    """Store a new single-use verification token (hash only) and queue the mail event."""
    token, expires_at = await issue_mail_token(
        uow, deps, user, TokenPurpose.EMAIL_VERIFICATION, deps.policy.verification_ttl
    )
    user.record(
        EmailVerificationRequested(
            organization_id=user.organization_id,
            user_id=user.id,
            email=user.email,
            token=token,
            expires_at=expires_at,
        )
    )
