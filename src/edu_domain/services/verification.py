"""Email verification: a single-use, expiring token by mail, or an admin's word."""

from __future__ import annotations

from uuid import UUID

from edu_domain.model.events import EmailVerified
from edu_domain.model.session import TokenPurpose, UserToken
from edu_domain.model.user import User
from edu_domain.query import Query
from edu_domain.services.context import Scope
from edu_domain.services.deps import Deps
from edu_domain.services.mail_tokens import consume_mail_token
from edu_domain.services.users import issue_verification


class VerificationService:
    def __init__(self, deps: Deps) -> None:
        self._d = deps

    async def verify_email(self, scope: Scope, token: str) -> User:
        """Consume a verification token and mark the address verified (PENDING -> ACTIVE)."""
        now = self._d.clock.now()
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            user = await consume_mail_token(uow, token, TokenPurpose.EMAIL_VERIFICATION, now)
            if user.mark_email_verified(now):
                user.record(EmailVerified(organization_id=user.organization_id, user_id=user.id))
            await uow.commit()
        return user

    async def mark_verified(self, scope: Scope, user_id: UUID) -> bool:
        """An administrator vouches for the address. False if it was already verified."""
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            user = await uow.require(User, user_id)
            changed = user.mark_email_verified(self._d.clock.now())
            if changed:
                user.record(EmailVerified(organization_id=user.organization_id, user_id=user.id))
                await uow.commit()
        return changed

    async def resend(self, scope: Scope, user_id: UUID) -> bool:
        """Issue a fresh token (older ones stay valid until they expire). False if verified."""
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            user = await uow.require(User, user_id)
            if user.email_verified:
                return False
            await issue_verification(uow, self._d, user)
            await uow.commit()
        return True

    async def pending_tokens(self, scope: Scope, user_id: UUID) -> int:
        """How many unused verification tokens a user has (for support screens)."""
        query = Query.where(user_id=user_id, purpose=TokenPurpose.EMAIL_VERIFICATION, used_at=None)
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            return await uow.count(UserToken, query)
