"""Login sessions: opening one for a user the host authenticated, resolving a bearer token,
listing and revoking sessions.

Opening a session after a password check is `AuthService.authenticate`; both end in
`_open_session`. Each use case checks its actor against `edu_domain.policy`.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from edu_domain.errors import InvalidToken, PermissionDenied, ValidationError
from edu_domain.model.events import SessionsRevoked, UserLoggedIn
from edu_domain.model.organization import Organization
from edu_domain.model.rules import check_aware
from edu_domain.model.session import JTI_PATTERN, LoginSession, check_jti
from edu_domain.model.user import User
from edu_domain.policy import check_manage_user, check_own_or_managed, check_self, check_statistics
from edu_domain.ports import UnitOfWork
from edu_domain.query import Query
from edu_domain.services.acting import INACTIVE, acting, check_open, is_open
from edu_domain.services.context import Scope
from edu_domain.services.deps import Deps
from edu_domain.services.queries import active_sessions, active_sessions_query
from edu_domain.services.tokens import (
    hash_secret,
    make_token,
    parse_uuid,
    secret_matches,
    split_token,
)
from edu_domain.services.views import LoginResult, Principal

_SESSION = "session"


class SessionService:
    """The session half of `AuthService`."""

    def __init__(self, deps: Deps) -> None:
        self._d = deps

    @staticmethod
    async def _check_organization_active(uow: UnitOfWork, user: User) -> None:
        """Read before any change to the user, so nothing is flushed by this read."""
        check_open(await uow.get(Organization, user.organization_id))

    def _check_may_sign_in(self, user: User) -> None:
        if user.status in INACTIVE:
            raise PermissionDenied(f"account is {user.status.value}")
        if self._d.policy.require_verified_email and not user.email_verified:
            raise PermissionDenied("email address not verified yet")

    async def _open_session(
        self,
        uow: UnitOfWork,
        user: User,
        ip_address: str | None,
        user_agent: str | None,
        *,
        jti: str | None = None,
        expires_at: datetime | None = None,
    ) -> LoginResult:
        secret = self._d.tokens.new_secret()
        session = LoginSession(
            id=self._d.ids.new_id(),
            organization_id=user.organization_id,
            user_id=user.id,
            jti=jti if jti is not None else self._d.ids.new_id().hex,
            token_hash=hash_secret(secret),
            ip_address=ip_address,
            user_agent=user_agent,
            expires_at=(
                expires_at
                if expires_at is not None
                else self._d.clock.now() + self._d.policy.session_ttl
            ),
        )
        await uow.add(session)
        user.record(
            UserLoggedIn(
                organization_id=user.organization_id, user_id=user.id, session_id=session.id
            )
        )
        token = make_token(user.organization_id.hex, session.jti, secret)
        return LoginResult(session, token)

    async def record_login(
        self,
        scope: Scope,
        user_id: UUID,
        *,
        ip_address: str | None = None,
        user_agent: str | None = None,
        jti: str | None = None,
        expires_at: datetime | None = None,
    ) -> LoginResult:
        """Open a session for a user the host authenticated itself (e.g. after SSO).

        The scope acts as that user (the host vouches for them) or is the system. A host
        that issues its own JWT records its `jti` (unique in the organization: a reused one
        is AlreadyExists) and `expires_at` (in the future, at most the policy's
        `session_max_ttl` ahead); by default both are chosen here.
        """
        if jti is not None:
            check_jti("jti", jti)
        now = self._d.clock.now()
        if expires_at is not None:
            self._check_expiry(expires_at, now)
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            check_self(await acting(uow, scope), user_id, "open a session")
            user = await uow.require(User, user_id)
            self._check_may_sign_in(user)
            await self._check_organization_active(uow, user)
            user.record_successful_login(now)
            result = await self._open_session(
                uow, user, ip_address, user_agent, jti=jti, expires_at=expires_at
            )
            await uow.commit()
        return result

    def _check_expiry(self, expires_at: object, now: datetime) -> None:
        check_aware("expires_at", expires_at)
        assert isinstance(expires_at, datetime)
        if expires_at <= now:
            raise ValidationError("expires_at", "must be in the future")
        longest = self._d.policy.session_max_ttl
        if expires_at - now > longest:
            raise ValidationError(
                "expires_at", f"must be at most {int(longest.total_seconds())} seconds ahead"
            )

    # ------------------------------------------------------------------ sessions

    async def resolve(self, token: str) -> Principal:
        """The tenant and user behind a session token; InvalidToken if it is not active."""
        org_hex, jti, secret = split_token(token, _SESSION, 3)
        organization_id = parse_uuid(org_hex, _SESSION)
        if not JTI_PATTERN.fullmatch(jti):  # anything else cannot match: no read needed
            raise InvalidToken(_SESSION)
        now = self._d.clock.now()
        async with self._d.uow(tenant=organization_id) as uow:
            session = await uow.first(LoginSession, Query.where(jti=jti))
            if session is None or not secret_matches(secret, session.token_hash):
                raise InvalidToken(_SESSION)
            if not session.is_active(now):
                raise InvalidToken(_SESSION)
            user = await uow.get(User, session.user_id)
            if user is None or user.status in INACTIVE:
                raise InvalidToken(_SESSION)
            if self._d.policy.require_verified_email and not user.email_verified:
                raise InvalidToken(_SESSION)  # a changed address: sign-in needs it verified
            if not is_open(await uow.get(Organization, organization_id)):
                raise InvalidToken(_SESSION)  # a suspended organization's sessions lapse
            return Principal(organization_id, user.id, session.id, user.role)

    async def get_active_sessions(self, scope: Scope, user_id: UUID) -> list[LoginSession]:
        """The user's own, or those of a user whose role the actor manages."""
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            actor = await acting(uow, scope)
            check_own_or_managed(actor, await uow.require(User, user_id), "see the sessions of")
            return await active_sessions(uow, user_id, self._d.clock.now())

    async def revoke_session(self, scope: Scope, session_id: UUID) -> bool:
        """Revoke one session; False if it was already revoked. NotFound if unknown.

        The session's user, or a manager of their role."""
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            actor = await acting(uow, scope)
            session = await uow.require(LoginSession, session_id)
            if not actor.is_user(session.user_id):
                owner = await uow.require(User, session.user_id, include_deleted=True)
                check_manage_user(actor, owner, "revoke the sessions of")
            changed = session.revoke(self._d.clock.now())
            await uow.commit()
        return changed

    async def logout(self, token: str) -> bool:
        principal = await self.resolve(token)
        return await self.revoke_session(
            Scope(principal.organization_id, principal.user_id), principal.session_id
        )

    async def revoke_all_sessions(self, scope: Scope, user_id: UUID) -> int:
        """Revoke every active session of the user; returns how many were revoked.

        The user themself, or a manager of their role."""
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            actor = await acting(uow, scope)
            user = await uow.require(User, user_id)
            check_own_or_managed(actor, user, "revoke the sessions of")
            count = await revoke_all(uow, user, self._d.clock.now())
            await uow.commit()
        return count

    async def invalidate_user_sessions(self, scope: Scope, user_id: UUID) -> int:
        """The old API's name for `revoke_all_sessions`."""
        return await self.revoke_all_sessions(scope, user_id)

    async def count_active_sessions(self, scope: Scope) -> int:
        """A statistic: staff and administrators."""
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            check_statistics(await acting(uow, scope))
            return await uow.count(LoginSession, active_sessions_query(self._d.clock.now()))


async def revoke_all(uow: UnitOfWork, user: User, now: datetime) -> int:
    sessions = await active_sessions(uow, user.id, now)
    for session in sessions:
        session.revoke(now)
    if sessions:
        user.record(
            SessionsRevoked(
                organization_id=user.organization_id, user_id=user.id, count=len(sessions)
            )
        )
    return len(sessions)
