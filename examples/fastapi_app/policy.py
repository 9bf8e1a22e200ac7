"""The HTTP caller as the core's actor; the rules themselves are `edu_domain.policy`.

The use cases check who may do what (a refusal is `PermissionDenied`, a 403); this module
only applies the one rule a response needs: which fields of another user the caller sees.
"""

from __future__ import annotations

from edu_domain.model import User
from edu_domain.policy import Actor, sees_contact_details
from examples.fastapi_app.dependencies import Caller
from examples.fastapi_app.schemas.users import UserOut


def actor(caller: Caller) -> Actor:
    """The signed-in user as the policy sees them (role as the session token resolved it)."""
    return Actor.member(caller.user_id, caller.role)


def visible(caller: Caller, user: User) -> UserOut:
    """The user as this caller may see them (`policy.CONTACT_FIELDS` hidden otherwise)."""
    out = UserOut.of(user)
    return out if sees_contact_details(actor(caller), user.id) else out.without_contact_details()
