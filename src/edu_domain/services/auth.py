"""Signing in: password check with lockout, password change and reset (sessions: `sessions.py`).

Passwords are verified outside any transaction (hashing is slow and must not hold a row or
a connection); the outcome is then written in a short unit of work that retries on a
concurrent change, so failure counters never lose an increment.
"""

from __future__ import annotations

from typing import NoReturn
from uuid import UUID

from attrs import field, frozen

from edu_domain.errors import (
    AccountLocked,
    AuthenticationFailed,
    ValidationError,
)
from edu_domain.model.events import (
    PasswordChanged,
    PasswordResetRequested,
    UserLockedOut,
)
from edu_domain.model.organization import Organization
from edu_domain.model.rules import check_clean, normalize_email, normalize_username
from edu_domain.model.session import TokenPurpose
from edu_domain.model.user import User, UserStatus
from edu_domain.policy import check_self
from edu_domain.ports import UnitOfWork
from edu_domain.query import Query
from edu_domain.services.acting import acting, is_open
from edu_domain.services.context import Scope
from edu_domain.services.deps import Deps
from edu_domain.services.mail_tokens import consume_mail_token, issue_mail_token, void_mail_tokens
from edu_domain.services.passwords import check_password, hash_password, verify_password
from edu_domain.services.retry import retrying
from edu_domain.services.sessions import SessionService, revoke_all
from edu_domain.services.views import LoginResult

_LOGIN_MAX = 254
#: The password of the throwaway hash unknown logins verify against.
_DUMMY = "not-a-real-password"


@frozen
class _Snapshot:
    user_id: UUID
    hashed_password: str = field(repr=False)


class AuthService(SessionService):
    """Sign-in with lockout, password change and reset; sessions (`SessionService`)."""

    def __init__(self, deps: Deps) -> None:
        super().__init__(deps)
        # built now, not on the first unknown login (which would then take a hash longer)
        dummy = getattr(deps.hasher, "dummy_hash", None)
        self._dummy_hash: str = dummy if isinstance(dummy, str) else deps.hasher.hash(_DUMMY)

    # ------------------------------------------------------------------ login

    async def authenticate(
        self,
        scope: Scope,
        login: str,
        password: str,
        *,
        ip_address: str | None = None,
        user_agent: str | None = None,
    ) -> LoginResult:
        """Check email-or-username + password; on success open a login session.

        Wrong credentials raise AuthenticationFailed (which part was wrong is never said);
        the N-th failure in a row locks the account for the policy's lockout period.
        """
        query = _login_query(login)
        snapshot = await self._snapshot(scope, query)
        if snapshot is None:
            await self._burn_time(password)
            await retrying(lambda: self._record_nothing(scope.organization_id))
            raise AuthenticationFailed()
        candidate = password if isinstance(password, str) else ""  # a verify either way
        verified = await verify_password(self._d.hasher, candidate, snapshot.hashed_password)
        if not (verified and isinstance(password, str)):
            await retrying(lambda: self._record_failure(scope, snapshot.user_id))
            raise AuthenticationFailed()
        return await retrying(
            lambda: self._record_success(scope, snapshot, password, ip_address, user_agent)
        )

    async def _snapshot(self, scope: Scope, query: Query) -> _Snapshot | None:
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            user = await uow.first(User, query)
            if user is None:
                return None
            if user.is_locked(self._d.clock.now()):
                assert user.locked_until is not None
                raise AccountLocked(user.locked_until)
            return _Snapshot(user.id, user.hashed_password)

    async def _burn_time(self, password: object) -> None:
        """Verify against a throwaway hash so that an unknown organization or login takes as
        long as a known one (existence must not leak through timing)."""
        candidate = password if isinstance(password, str) else ""
        await verify_password(self._d.hasher, candidate, self._dummy_hash)

    async def _record_nothing(self, organization_id: UUID) -> None:
        """The database work of `_record_failure` without its write: a unit of work, a
        locked read of a user (that does not exist) and a commit, so an unknown login costs
        the same round trips as a known one's wrong password. What remains (the UPDATE of
        one row) is stated in the README."""
        async with self._d.uow(tenant=organization_id) as uow:
            await uow.get(User, self._d.ids.new_id(), lock=True)
            await uow.commit()

    async def reject(self, password: object) -> NoReturn:
        """Fail a sign-in that named no known organization, after the time a real check
        takes (a verify and `_record_nothing`'s round trips): raises AuthenticationFailed.
        For host services that resolve the organization themselves (e.g. from a slug)
        before calling `authenticate`."""
        await self._burn_time(password)
        await retrying(lambda: self._record_nothing(self._d.ids.new_id()))
        raise AuthenticationFailed()

    async def _record_failure(self, scope: Scope, user_id: UUID) -> None:
        now = self._d.clock.now()
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            user = await uow.get(User, user_id, lock=True)  # concurrent failures queue up
            if user is None:
                return
            if user.is_locked(now):
                assert user.locked_until is not None
                raise AccountLocked(user.locked_until)
            locked = user.record_failed_login(
                now, self._d.policy.max_failed_logins, self._d.policy.lockout
            )
            until = user.locked_until
            if locked and until is not None:
                user.record(
                    UserLockedOut(
                        organization_id=user.organization_id, user_id=user.id, until=until
                    )
                )
            await uow.commit()
        if locked and until is not None:
            raise AccountLocked(until)

    async def _record_success(
        self,
        scope: Scope,
        snapshot: _Snapshot,
        password: str,
        ip_address: str | None,
        user_agent: str | None,
    ) -> LoginResult:
        now = self._d.clock.now()
        async with self._d.uow(tenant=scope.organization_id, actor=snapshot.user_id) as uow:
            user = await uow.get(User, snapshot.user_id)
            if user is None:
                raise AuthenticationFailed()
            if user.hashed_password != snapshot.hashed_password and not await verify_password(
                self._d.hasher, password, user.hashed_password
            ):
                raise AuthenticationFailed()
            if user.is_locked(now):
                assert user.locked_until is not None
                raise AccountLocked(user.locked_until)
            self._check_may_sign_in(user)
            await self._check_organization_active(uow, user)
            if self._d.hasher.needs_rehash(user.hashed_password):
                user.hashed_password = await hash_password(self._d.hasher, password)
            user.record_successful_login(now)
            result = await self._open_session(uow, user, ip_address, user_agent)
            await uow.commit()
        return result

    # ------------------------------------------------------------------ passwords

    async def change_password(
        self, scope: Scope, user_id: UUID, current_password: str, new_password: str
    ) -> int:
        """Change the password; revokes every session and pending reset token.

        Returns the number of sessions revoked. Only the user themself (or the system).
        """
        check_password(new_password, self._d.policy)
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            check_self(await acting(uow, scope), user_id, "change a password")
            user = await uow.require(User, user_id)
            if not isinstance(current_password, str) or not await verify_password(
                self._d.hasher, current_password, user.hashed_password
            ):
                raise AuthenticationFailed()
            count = await self._set_password(uow, user, new_password)
            await uow.commit()
        return count

    async def request_password_reset(self, scope: Scope, email: str) -> None:
        """Mail a single-use reset link if the address belongs to a live user.

        Says nothing either way, so the endpoint cannot be used to probe for accounts.
        """
        if not isinstance(email, str) or len(email) > _LOGIN_MAX:
            return
        try:
            check_clean("email", email)
        except ValidationError:
            return
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            if not is_open(await uow.get(Organization, scope.organization_id)):
                return  # a suspended organization's members do not act: no link
            user = await uow.first(User, Query.where(email=normalize_email(email)))
            if user is None or user.status is UserStatus.DEACTIVATED:
                return
            token, expires_at = await issue_mail_token(
                uow, self._d, user, TokenPurpose.PASSWORD_RESET, self._d.policy.reset_ttl
            )
            user.record(
                PasswordResetRequested(
                    organization_id=user.organization_id,
                    user_id=user.id,
                    email=user.email,
                    token=token,
                    expires_at=expires_at,
                )
            )
            await uow.commit()

    async def reset_password(self, scope: Scope, token: str, new_password: str) -> None:
        """Set a new password with a reset token; the token (and all others) die with it."""
        check_password(new_password, self._d.policy)
        now = self._d.clock.now()
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            user = await consume_mail_token(uow, token, TokenPurpose.PASSWORD_RESET, now)
            user.failed_login_count = 0
            user.locked_until = None
            await self._set_password(uow, user, new_password)
            await uow.commit()

    async def _set_password(self, uow: UnitOfWork, user: User, new_password: str) -> int:
        now = self._d.clock.now()
        user.change_password_hash(await hash_password(self._d.hasher, new_password), now)
        await void_mail_tokens(uow, user.id, now, TokenPurpose.PASSWORD_RESET)
        user.record(PasswordChanged(organization_id=user.organization_id, user_id=user.id))
        return await revoke_all(uow, user, now)


def _login_query(login: object) -> Query:
    if not isinstance(login, str) or not login.strip() or len(login) > _LOGIN_MAX:
        raise AuthenticationFailed()
    try:
        check_clean("login", login)
    except ValidationError:
        raise AuthenticationFailed() from None
    if "@" in login:
        return Query.where(email=normalize_email(login))
    return Query.where(username=normalize_username(login))
