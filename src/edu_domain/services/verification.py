"""Email verification: a single-use, expiring token by mail, or an admin's word."""

from __future__ import annotations

from uuid import UUID

from edu_domain.model.events import EmailVerified
from edu_domain.model.session import TokenPurpose, UserToken
from edu_domain.model.user import User
from edu_domain.policy import check_manage_user, check_manages_users, check_own_or_managed
from edu_domain.query import Query
from edu_domain.services.acting import acting
from edu_domain.services.context import Scope
from edu_domain.services.deps import Deps
from edu_domain.services.mail_tokens import consume_mail_token
from edu_domain.services.users import issue_verification


class VerificationService:
    def __init__(self, deps: Deps) -> None:
        self._d = deps

    async def verify_email(self, scope: Scope, token: str) -> User:
        """Consume a verification token and mark the address verified (PENDING -> ACTIVE).

        The token proves who calls: any scope of its organization will do, anonymous too."""
        now = self._d.clock.now()
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            user = await consume_mail_token(uow, token, TokenPurpose.EMAIL_VERIFICATION, now)
            if user.mark_email_verified(now):
                user.record(EmailVerified(organization_id=user.organization_id, user_id=user.id))
            await uow.commit()
        return user

    async def mark_verified(self, scope: Scope, user_id: UUID) -> bool:
        """A manager of the user's role vouches for the address. False if it already was."""
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            actor = await acting(uow, scope)
            check_manages_users(actor, "verify")
            user = await uow.require(User, user_id)
            check_manage_user(actor, user, "verify")
            changed = user.mark_email_verified(self._d.clock.now())
            if changed:
                user.record(EmailVerified(organization_id=user.organization_id, user_id=user.id))
                await uow.commit()
        return changed

    async def resend(self, scope: Scope, user_id: UUID) -> bool:
        """Issue a fresh token (older ones stay valid until they expire). False if verified.

        The user themself, or a manager of their role."""
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            actor = await acting(uow, scope)
            user = await uow.require(User, user_id)
            check_own_or_managed(actor, user, "resend the verification of")
            if user.email_verified:
                return False
            await issue_verification(uow, self._d, user)
            await uow.commit()
        return True

    async def pending_tokens(self, scope: Scope, user_id: UUID) -> int:
        """How many unused verification tokens a user has (for support screens)."""
        query = Query.where(user_id=user_id, purpose=TokenPurpose.EMAIL_VERIFICATION, used_at=None)
        async with self._d.uow(tenant=scope.organization_id, actor=scope.actor_id) as uow:
            actor = await acting(uow, scope)
            check_own_or_managed(actor, await uow.require(User, user_id), "read the tokens of")
            return await uow.count(UserToken, query)
