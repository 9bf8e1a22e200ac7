"""Who may do what, on top of the tenant isolation the core enforces.

- Administrators manage the users of their organization: create, change role, status,
  email or username, delete, restore, mark verified, and read statistics.
- Every user may read the users and the content of their own organization, change their
  own `full_name` and profile, and manage their own sessions and password.
- Students and parents see other users' names, roles and status, but not their email
  addresses, when they verified them or when they last signed in; teaching assistants,
  teachers, staff and administrators see those too.
- Students, teaching assistants, teachers, staff and administrators may create drafts;
  parents may not. The author, staff and administrators may edit, publish, archive and
  delete a piece of content; the domain itself refuses to publish content whose author's
  role may not publish (students' drafts stay drafts).
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from edu_domain import PermissionDenied
from edu_domain.model import EducationalContent, UserRole
from examples.fastapi_app.dependencies import Caller

#: What a user may change on their own user record without being an administrator.
SELF_EDITABLE = frozenset({"full_name"})
CONTENT_CREATORS = frozenset(
    {
        UserRole.STUDENT,
        UserRole.TEACHING_ASSISTANT,
        UserRole.TEACHER,
        UserRole.STAFF,
        UserRole.ADMIN,
    }
)
CONTENT_MANAGERS = frozenset({UserRole.STAFF, UserRole.ADMIN})


def check_user_update(caller: Caller, user_id: UUID, fields: Iterable[str]) -> None:
    if caller.is_admin:
        return
    if user_id != caller.user_id:
        raise PermissionDenied("only administrators may change other users")
    forbidden = sorted(set(fields) - SELF_EDITABLE)
    if forbidden:
        raise PermissionDenied(f"only administrators may change {', '.join(forbidden)}")


def check_profile_update(caller: Caller, user_id: UUID) -> None:
    if not caller.is_admin and user_id != caller.user_id:
        raise PermissionDenied("only administrators may change other users' profiles")


def check_may_create_content(caller: Caller) -> None:
    if caller.role not in CONTENT_CREATORS:
        raise PermissionDenied(f"a {caller.role.value} may not create content")


def check_may_manage_content(caller: Caller, content: EducationalContent) -> None:
    if content.author_id != caller.user_id and caller.role not in CONTENT_MANAGERS:
        raise PermissionDenied("only the author, staff or administrators may change this")


#: Roles that see other users' email addresses and activity (verification, last sign-in).
#: Students and parents see other users' names only.
SEES_CONTACT_DETAILS = frozenset(
    {UserRole.TEACHING_ASSISTANT, UserRole.TEACHER, UserRole.STAFF, UserRole.ADMIN}
)


def may_see_contact_details(caller: Caller, user_id: UUID) -> bool:
    return user_id == caller.user_id or caller.role in SEES_CONTACT_DETAILS
