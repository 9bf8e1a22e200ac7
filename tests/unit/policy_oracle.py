"""The policy table as the README documents it (*Authorization*), and a model of one
organization to predict outcomes from: the oracle of `test_policy_table.py`.

Written from the documented table, not from `edu_domain.policy`: nothing here imports it.
Outcomes: "ok", "denied" (PermissionDenied), "invalid" (InvalidState), "missing" (NotFound,
or a delete that finds nothing).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from attrs import define, field

# ---------------------------------------------------------------------- the table, as documented

S, P, TA, T, ST, A = (
    "student",
    "parent",
    "teaching_assistant",
    "teacher",
    "staff",
    "admin",
)
RANK = {S: 1, P: 1, TA: 2, T: 3, ST: 4, A: 5}
AUTHORS = {S, TA, T, ST, A}
PUBLISHERS = {T, ST, A}
CONTENT_MANAGERS = {ST, A}
STATISTICS = {ST, A}
CANNOT_ACT = {"suspended", "deactivated"}


def manages(role: str | None, target_role: str) -> bool:
    """'Administrators manage every role; staff manage the roles ranked below theirs.'"""
    if role is None:  # the system
        return True
    return role == A or (role == ST and RANK[target_role] < RANK[ST])


# ---------------------------------------------------------------------- the model


@define
class UserM:
    role: str
    status: str = "active"
    deleted: bool = False
    id: UUID | None = None


@define
class ContentM:
    author: str
    status: str = "draft"
    deleted: bool = False
    gone: bool = False  # hard-deleted
    id: UUID | None = None


@define
class Model:
    users: dict[str, UserM] = field(factory=dict)
    content: dict[str, ContentM] = field(factory=dict)

    def active_admins(self, besides: str | None = None) -> int:
        return sum(
            1
            for key, u in self.users.items()
            if key != besides and u.role == A and u.status == "active" and not u.deleted
        )

    def acting_role(self, actor: str) -> str | None:
        """The actor's role now; None for the system."""
        return None if actor == "system" else self.users[actor].role

    def can_act(self, actor: str) -> bool:
        if actor == "system":
            return True
        if actor in ("anonymous", "stranger"):
            return False
        user = self.users[actor]
        return not user.deleted and user.status not in CANNOT_ACT


# ---------------------------------------------------------------------- the oracle


def expect(m: Model, actor: str, action: str, arg: Any) -> str:
    """The documented outcome of `actor` doing `action` with `arg`, given the model."""
    if not m.can_act(actor):
        return "denied"
    role = m.acting_role(actor)
    system = role is None
    if action == "read":
        return "ok"
    if action == "statistics":
        return "ok" if system or role in STATISTICS else "denied"
    if action == "rename_org":
        return "ok" if system or role == A else "denied"
    if action == "register":
        return "ok" if manages(role, arg) and (system or role in (ST, A)) else "denied"
    if action in ("update", "profile", "sessions", "change_password", "record_login"):
        target_key, changes = arg if action == "update" else (arg, {})
        target = m.users[target_key]
        if action in ("change_password", "record_login"):
            if not (system or actor == target_key):
                return "denied"
            if target.deleted:
                return "missing"
            # 'suspended or deactivated accounts neither sign in nor act'
            return "denied" if action == "record_login" and target.status in CANNOT_ACT else "ok"
        if target.deleted:
            return "missing"
        if actor == target_key and set(changes) <= {"full_name"}:
            return "ok"
        if not manages(role, target.role):
            return "denied"
        if "role" in changes and not manages(role, changes["role"]):
            return "denied"
        if changes.get("status") == "pending" != target.status:
            return "rejected"  # 'pending' only until a new account is verified
        after_role = changes.get("role", target.role)
        after_status = changes.get("status", target.status)
        was_admin = target.role == A and target.status == "active"
        demoted = after_role != A or after_status != "active"
        if was_admin and demoted and m.active_admins(besides=target_key) == 0:
            return "invalid"
        return "ok"
    if action in ("delete", "restore", "verify"):
        if not (system or role in (ST, A)):
            return "denied"
        target = m.users[arg]
        if target.deleted and action in ("delete", "verify"):
            return "missing"
        if not manages(role, target.role):
            return "denied"
        if action == "delete":
            if actor == arg:
                return "invalid"
            if target.role == A and target.status == "active" and m.active_admins(arg) == 0:
                return "invalid"
        return "ok"
    return expect_content(m, actor, role, action, arg)


def expect_content(m: Model, actor: str, role: str | None, action: str, arg: Any) -> str:
    system = role is None
    manager = system or role in CONTENT_MANAGERS
    if action == "draft":
        if not (system or role in AUTHORS):
            return "denied"
        if arg != actor and not manager:
            return "denied"
        if m.users[arg].deleted:
            return "missing"
        # 'an author is someone who may create content' (a parent is not)
        return "ok" if m.users[arg].role in AUTHORS else "denied"
    if action == "hard_delete" and not (system or role == A):
        return "denied"
    if action == "restore_content":
        if not manager:
            return "denied"
        return "missing" if m.content[arg].gone else "ok"
    item = m.content[arg]
    if item.gone or (item.deleted and action != "hard_delete"):
        return "missing"
    if action == "publish" and not (system or role in PUBLISHERS):
        return "denied"
    if not (actor == item.author or manager):
        return "denied"
    if action == "publish" and item.status != "draft":
        return "invalid"
    if action in ("archive", "edit") and item.status == "archived":
        return "invalid"
    return "ok"
