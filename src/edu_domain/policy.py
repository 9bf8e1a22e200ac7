"""Who may do what: the one policy table every use case checks, on every adapter.

An `Actor` is a member of the organization with the role they have *now* (the use case reads
it in its own unit of work), or the system (bootstrap, imports, the CLI: every action, the
invariants still hold). The table, as the README shows it:

| action | allowed to |
|---|---|
| read users, profiles and content of the organization | every member |
| see another user's email, `email_verified_at`, `last_login_at` | teaching assistants, teachers, staff, administrators (everyone: their own) |
| create a user of role R; give a user role R | a manager of R |
| bulk import users of role R (`users.import_users`) | administrators (who manage every role) |
| change a user's email, username, role, status; mark verified; delete; restore | a manager of the user's role |
| change a user's `full_name` or profile; see, revoke their sessions; resend verification | the user, or a manager of their role |
| change a password; open a session (`record_login`) | the user themself |
| read statistics (users, active sessions) | staff, administrators |
| create a draft | students, teaching assistants, teachers, staff, administrators (not parents) |
| create a draft for another author | staff, administrators |
| edit, archive, soft-delete content | its author, staff, administrators |
| publish a draft | teachers (their own), staff and administrators (anyone's) |
| hard-delete content | administrators |
| restore content | staff, administrators |
| rename the organization | administrators |

Managers: administrators manage every role; staff manage the roles ranked below theirs
(student, parent, teaching assistant, teacher). So nobody grants a role above their own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from uuid import UUID

from attrs import frozen

from edu_domain.errors import PermissionDenied
from edu_domain.model.base import to_enum
from edu_domain.model.content import EducationalContent
from edu_domain.model.user import PUBLISHING_ROLES, User, UserRole

_S, _P, _TA, _T, _ST, _A = (
    UserRole.STUDENT,
    UserRole.PARENT,
    UserRole.TEACHING_ASSISTANT,
    UserRole.TEACHER,
    UserRole.STAFF,
    UserRole.ADMIN,
)

#: How far a role reaches: a manager manages the roles ranked below their own (admins: all).
RANK: Mapping[UserRole, int] = {_S: 1, _P: 1, _TA: 2, _T: 3, _ST: 4, _A: 5}
#: Roles that manage other users at all (which ones: `manages`).
USER_MANAGERS = frozenset({_ST, _A})
#: Roles that may bulk import users (`check_import_users`).
USER_IMPORTERS = frozenset({_A})
CONTENT_AUTHORS = frozenset({_S, _TA, _T, _ST, _A})
#: Roles that may publish: their own drafts, or anyone's when they also manage content.
PUBLISHERS = PUBLISHING_ROLES
CONTENT_MANAGERS = frozenset({_ST, _A})
STATISTICS_READERS = frozenset({_ST, _A})
#: Roles that see other users' contact details and activity (`CONTACT_FIELDS`).
CONTACT_READERS = frozenset({_TA, _T, _ST, _A})
CONTACT_FIELDS = ("email", "email_verified_at", "last_login_at")
#: What users may change on their own user record without managing their own role.
SELF_EDITABLE = frozenset({"full_name"})


@frozen
class Actor:
    """Who performs a use case: a member with their current role, or the system."""

    user_id: UUID | None
    role: UserRole | None

    @classmethod
    def system(cls) -> Actor:
        return cls(None, None)

    @classmethod
    def member(cls, user_id: UUID, role: UserRole) -> Actor:
        return cls(user_id, role)

    @property
    def is_system(self) -> bool:
        return self.user_id is None

    def is_user(self, user_id: object) -> bool:
        return self.user_id is not None and self.user_id == user_id

    def has(self, roles: Iterable[UserRole]) -> bool:
        """The system, or a member whose role is one of `roles`."""
        return self.is_system or self.role in frozenset(roles)


def as_role(value: object) -> UserRole | None:
    """`value` as a role exactly as the entity converts it, or None when it is no role (the
    entity's validator then refuses it)."""
    role = to_enum(UserRole)(value)
    return role if isinstance(role, UserRole) else None


def manages(actor: Actor, role: UserRole) -> bool:
    """Whether `actor` may create, change and delete users of `role`, and grant it."""
    if actor.is_system or actor.role is _A:
        return True
    return actor.role is _ST and RANK[role] < RANK[_ST]


def _deny(message: str) -> PermissionDenied:
    return PermissionDenied(message)


def _who(actor: Actor) -> str:
    return "the system" if actor.role is None else f"a {actor.role.value}"


# ---------------------------------------------------------------------- users


def check_manages_users(actor: Actor, what: str) -> None:
    """Actions only managers take: refused before the target is even looked up."""
    if not actor.has(USER_MANAGERS):
        raise _deny(f"{_who(actor)} may not {what} users")


def check_create_user(actor: Actor, role: object) -> None:
    """Creating a user of `role` (an unknown role is left to the entity's validator)."""
    check_manages_users(actor, "create")
    wanted = as_role(role)
    if wanted is not None and not manages(actor, wanted):
        raise _deny(f"{_who(actor)} may not create a {wanted.value}")


def check_import_users(actor: Actor, role: object) -> None:
    """A bulk import (one check per row): administrators only, and still only roles they
    manage, so nobody imports a role above their own."""
    if not actor.has(USER_IMPORTERS):
        raise _deny(f"{_who(actor)} may not import users")
    wanted = as_role(role)
    if wanted is not None and not manages(actor, wanted):
        raise _deny(f"{_who(actor)} may not import a {wanted.value}")


def check_manage_user(actor: Actor, target: User, what: str) -> None:
    """An action only a manager of the target's role may take (delete, restore, verify)."""
    if not manages(actor, target.role):
        raise _deny(f"{_who(actor)} may not {what} a {target.role.value}")


def check_update_user(actor: Actor, target: User, changes: Mapping[str, object]) -> None:
    """A partial update: own `full_name` for everyone; the rest for a manager, who may
    only grant a role they manage."""
    if actor.is_user(target.id) and set(changes) <= SELF_EDITABLE:
        return
    check_manage_user(actor, target, "change")
    wanted = as_role(changes["role"]) if "role" in changes else None
    if wanted is not None and not manages(actor, wanted):
        raise _deny(f"{_who(actor)} may not grant the role {wanted.value}")


def check_own_or_managed(actor: Actor, target: User, what: str) -> None:
    """The user themself, or a manager of their role (profile, sessions, verification)."""
    if not actor.is_user(target.id):
        check_manage_user(actor, target, what)


def check_self(actor: Actor, user_id: UUID, what: str) -> None:
    """Only the user themself (or the system): a password change, opening a session."""
    if not (actor.is_system or actor.is_user(user_id)):
        raise _deny(f"only the user themself may {what}")


def check_statistics(actor: Actor) -> None:
    if not actor.has(STATISTICS_READERS):
        raise _deny(f"{_who(actor)} may not read statistics")


def sees_contact_details(actor: Actor, user_id: object) -> bool:
    """Whether `actor` sees the user's `CONTACT_FIELDS` (always their own)."""
    return actor.is_user(user_id) or actor.has(CONTACT_READERS)


# ---------------------------------------------------------------------- content


def check_create_content(actor: Actor, author_id: UUID | None) -> None:
    if not actor.has(CONTENT_AUTHORS):
        raise _deny(f"{_who(actor)} may not create content")
    other = author_id is not None and not actor.is_user(author_id)
    if other and not actor.has(CONTENT_MANAGERS):
        raise _deny(f"{_who(actor)} may not create content for another author")


def check_author(role: UserRole) -> None:
    """An author is someone who may create content: a draft written for a parent would
    give them the author's rights over it."""
    if role not in CONTENT_AUTHORS:
        raise _deny(f"a {role.value} may not be the author of content")


def check_change_content(actor: Actor, content: EducationalContent, what: str) -> None:
    """Edit, archive or soft-delete: the author, staff and administrators."""
    if not (actor.is_user(content.author_id) or actor.has(CONTENT_MANAGERS)):
        raise _deny(f"only the author, staff or administrators may {what} this content")


def check_publish(actor: Actor, content: EducationalContent) -> None:
    """The caller's role decides (not the author's): publishers, their own drafts or, as
    content managers, anyone's."""
    if not actor.has(PUBLISHERS):
        raise _deny(f"{_who(actor)} may not publish content")
    check_change_content(actor, content, "publish")


def check_hard_delete_content(actor: Actor) -> None:
    if not actor.has({_A}):
        raise _deny("only administrators may hard-delete content")


def check_restore_content(actor: Actor) -> None:
    if not actor.has(CONTENT_MANAGERS):
        raise _deny(f"{_who(actor)} may not restore content")


def check_rename_organization(actor: Actor) -> None:
    if not actor.has({_A}):
        raise _deny("only administrators may rename the organization")


__all__ = [
    "CONTACT_FIELDS",
    "CONTACT_READERS",
    "CONTENT_AUTHORS",
    "CONTENT_MANAGERS",
    "PUBLISHERS",
    "RANK",
    "SELF_EDITABLE",
    "STATISTICS_READERS",
    "USER_IMPORTERS",
    "USER_MANAGERS",
    "Actor",
    "as_role",
    "check_author",
    "check_change_content",
    "check_create_content",
    "check_create_user",
    "check_hard_delete_content",
    "check_import_users",
    "check_manage_user",
    "check_manages_users",
    "check_own_or_managed",
    "check_publish",
    "check_rename_organization",
    "check_restore_content",
    "check_self",
    "check_statistics",
    "check_update_user",
    "manages",
    "sees_contact_details",
]
