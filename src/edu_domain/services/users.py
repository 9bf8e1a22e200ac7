"""User use cases that write: register, bulk create, update, delete and restore.

Reads live in `user_reads.py` (`UserService` has both). Each use case checks its actor
against `edu_domain.policy`; changes that could take away an administrator run under the
organization's row lock and keep at least one active administrator.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from uuid import UUID

from edu_domain.errors import InvalidState, NotFound, ValidationError
from edu_domain.imports import check_rows, chunks
from edu_domain.model.events import (
    EmailVerificationRequested,
    UserDeleted,
    UserRegistered,
    UserRestored,
)
from edu_domain.model.organization import Organization, OrganizationStatus
from edu_domain.model.session import TokenPurpose
from edu_domain.model.user import User, UserProfile, UserRole, check_status_change
from edu_domain.policy import (
    Actor,
    check_create_user,
    check_import_users,
    check_manage_user,
    check_manages_users,
    check_own_or_managed,
    check_update_user,
)
from edu_domain.ports import UnitOfWork
from edu_domain.query import Query
from edu_domain.services.acting import (
    acting,
    acting_cached,
    is_active_admin,
    keep_an_administrator,
    lock_organization,
)
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
from edu_domain.services.mail_tokens import issue_mail_token, void_mail_tokens
from edu_domain.services.passwords import check_password, hash_password
from edu_domain.services.queries import active_sessions
from edu_domain.services.user_reads import UserReads
from edu_domain.services.views import UserAccount

#: Changes that can take away an administrator: they run under the organization's lock.
#: Changes that can cost an administrator the right to act or to sign in (a new address is
#: unverified): they take the organization's lock and the last-administrator check.
_ADMIN_FIELDS = frozenset({"role", "status", "email"})


class UserService(UserReads):
    """Everything the old `UserRepository` did, as use cases over the unit of work."""

    # ------------------------------------------------------------------ create

    async def register(
        self, scope: Scope, new: NewUser, *, send_verification: bool = True
    ) -> UserAccount:
        """Create a user and their profile in one transaction; mail a verification link.

        The actor must manage the new user's role (`policy.check_create_user`).
        """
        new = require_command(new, NewUser, "user")
        await self._may_create(scope, [new])  # before the slow hash; checked again below
        hashed = await hash_for(new, self._d)
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            org = await _require_active_org(uow, scope.organization_id)
            check_create_user(await acting(uow, scope, org), new.role)
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
        await self._may_create(scope, users)
        hashes = await asyncio.gather(*(hash_for(new, self._d) for new in users))
        built = [
            build_account(self._d, scope.organization_id, new, hashed)
            for new, hashed in zip(users, hashes, strict=True)
        ]
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            org = await _require_active_org(uow, scope.organization_id)
            actor = await acting(uow, scope, org)
            for new in users:
                check_create_user(actor, new.role)
            await uow.add_all([user for user, _ in built])
            await uow.add_all([profile for _, profile in built])
            await uow.commit()
        return [UserAccount(user, profile) for user, profile in built]

    async def import_users(self, scope: Scope, rows: Iterable[Mapping[str, Any]]) -> int:
        """Bulk import plain user rows (`UnitOfWork.import_rows`: User fields, with a
        `hashed_password`, no plain password), each with a default profile, in one
        transaction; how many users. Administrators only (`policy.check_import_users`).

        Rows are read lazily, a chunk at a time, so a generator of any length keeps memory
        flat. Like `create_many`, no per-user event: the commit listeners hear the inserts.
        """
        check_import_users(await acting_cached(self._d, scope), None)  # early: no lookups
        source = check_rows(rows)
        count = 0
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            org = await _require_active_org(uow, scope.organization_id)
            actor = await acting(uow, scope, org)
            for chunk in chunks(source):
                users = [_import_row(self._d, actor, row) for row in chunk]
                count += await uow.import_rows(User, users)
                await uow.import_rows(UserProfile, [{"user_id": u["id"]} for u in users])
            await uow.commit()
        return count

    async def _may_create(self, scope: Scope, users: Sequence[NewUser]) -> None:
        """The permission check, early: a refused caller costs no password hash."""
        actor = await acting_cached(self._d, scope)
        for new in users:
            check_create_user(actor, new.role)

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

        Everyone may change their own `full_name`; the rest takes a manager of the user's
        role (who may grant only roles they manage), and the organization keeps an active
        administrator. `expected_version` (an HTTP If-Match) turns a lost update into
        ConcurrencyConflict. A new email address is unverified until its owner follows the
        link mailed to it.
        """
        check_changes(changes, USER_UPDATABLE)
        guarded = not _ADMIN_FIELDS.isdisjoint(changes)
        verified = self._d.policy.require_verified_email
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            org = await lock_organization(uow, scope.organization_id) if guarded else None
            actor = await acting(uow, scope, org)
            user = await uow.require(User, user_id)
            check_update_user(actor, user, changes)
            check_version(user, expected_version)
            if "status" in changes:
                check_status_change(user.status, changes["status"])
            was_admin = is_active_admin(user, verified=verified)
            old_email = user.email
            for name, value in changes.items():
                setattr(user, name, value)
            email_changed = user.email != old_email
            if email_changed:
                user.email_verified = False
                user.email_verified_at = None
                await void_mail_tokens(uow, user.id, self._d.clock.now())
            if guarded:
                await keep_an_administrator(uow, user, was_admin=was_admin, verified=verified)
            if email_changed:
                await issue_verification(uow, self._d, user)
            await uow.commit()
        return user

    async def update_profile(
        self, scope: Scope, user_id: UUID, changes: Mapping[str, Any]
    ) -> UserProfile:
        """The user's own profile, or one of a user whose role the actor manages."""
        check_changes(changes, PROFILE_UPDATABLE)
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            actor = await acting(uow, scope)
            user = await uow.require(User, user_id)
            check_own_or_managed(actor, user, "change the profile of")
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

        A manager of the user's role deletes; nobody deletes their own account, nor the
        last active administrator (InvalidState). Returns False when there was nothing to
        delete (already deleted or missing).
        """
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            org = await lock_organization(uow, scope.organization_id)
            actor = await acting(uow, scope, org)
            check_manages_users(actor, "delete")
            user = await uow.get(User, user_id, include_deleted=hard)
            if user is None:
                return False
            check_manage_user(actor, user, "delete")
            if actor.is_user(user.id):
                raise InvalidState("an account cannot delete itself")
            verified = self._d.policy.require_verified_email
            was_admin = is_active_admin(user, verified=verified) and not user.is_deleted
            if not hard:
                now = self._d.clock.now()
                for session in await active_sessions(uow, user.id, now):
                    session.revoke(now)
            user.record(
                UserDeleted(organization_id=user.organization_id, user_id=user.id, hard=hard)
            )
            await uow.delete(user, hard=hard)
            await keep_an_administrator(
                uow, user, was_admin=was_admin, removed=True, verified=verified
            )
            await uow.commit()
        return True

    async def restore(self, scope: Scope, user_id: UUID) -> User:
        """Undo a soft delete: a manager of the user's role."""
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            actor = await acting(uow, scope)
            check_manages_users(actor, "restore")
            user = await uow.require(User, user_id, include_deleted=True)
            check_manage_user(actor, user, "restore")
            if user.is_deleted:
                await uow.restore(user)
                user.record(UserRestored(organization_id=user.organization_id, user_id=user.id))
                await uow.commit()
        return user


# ---------------------------------------------------------------------- shared helpers


async def _require_active_org(uow: UnitOfWork, organization_id: UUID) -> Organization:
    org = await uow.require(Organization, organization_id)
    if org.status is not OrganizationStatus.ACTIVE:
        raise ValidationError("organization_id", f"organization is {org.status.value}")
    return org


def _import_row(deps: Deps, actor: Actor, row: object) -> Mapping[str, Any]:
    """A row the actor may import, with the id its profile refers to."""
    if not isinstance(row, Mapping):
        raise ValidationError("rows", "each row must map field names to values")
    check_import_users(actor, row.get("role", UserRole.STUDENT))
    return row if "id" in row else {**row, "id": deps.ids.new_id()}


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
