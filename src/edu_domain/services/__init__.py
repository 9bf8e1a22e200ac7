"""The use cases. `EduCore` bundles them over one set of ports:

core = EduCore(Deps(uow=factory, clock=clock, ids=ids, tokens=tokens, hasher=hasher))
account = await core.users.register(Scope(org.id), NewUser(email=..., username=..., password=...))
async with core.transaction(scope) as tx:  # several use cases, one commit
    draft = await tx.content.create_draft(scope, NewContent(title="Fractions", body="..."))
    await tx.content.publish(scope, draft.id)
"""

from __future__ import annotations

from edu_domain.services.auth import AuthService
from edu_domain.services.commands import NewContent, NewUser
from edu_domain.services.content import ContentSearch, ContentService
from edu_domain.services.context import Scope, SecurityPolicy
from edu_domain.services.deps import Deps
from edu_domain.services.events import EventDispatcher
from edu_domain.services.organizations import OrganizationService
from edu_domain.services.retry import retrying
from edu_domain.services.transaction import Transaction
from edu_domain.services.users import UserService
from edu_domain.services.verification import VerificationService
from edu_domain.services.views import LoginResult, Principal, UserAccount, UserStatistics


class EduCore:
    """Every use case, sharing one set of ports."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.organizations = OrganizationService(deps)
        self.users = UserService(deps)
        self.verification = VerificationService(deps)
        self.auth = AuthService(deps)
        self.content = ContentService(deps)

    def transaction(self, scope: Scope) -> Transaction:
        """Several use cases in one unit of work: `async with core.transaction(scope) as tx`.

        The block commits once when it ends without an error; events, cache invalidation
        and after-commit callbacks follow that commit. Any failure leaves nothing.
        """
        return Transaction(self.deps, scope, type(self))


__all__ = [
    "AuthService",
    "ContentSearch",
    "ContentService",
    "Deps",
    "EduCore",
    "EventDispatcher",
    "LoginResult",
    "NewContent",
    "NewUser",
    "OrganizationService",
    "Principal",
    "Scope",
    "SecurityPolicy",
    "Transaction",
    "UserAccount",
    "UserService",
    "UserStatistics",
    "VerificationService",
    "retrying",
]
