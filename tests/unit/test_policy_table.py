"""Random actors run random use cases; each outcome must be the one the README's policy table
and invariants predict (memory adapter).

The oracle (`policy_oracle.py`) is written from the documented table, not from
`edu_domain.policy`: it keeps its own model of the organization (roles, statuses, deletions,
content authors and states) and predicts each outcome; after every step the stored rows are
compared with the model, so a refused call that wrote something fails too.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from attrs import define, field
from hypothesis import given, settings
from hypothesis import strategies as st

from edu_domain import InvalidState, NotFound, PermissionDenied, ValidationError
from edu_domain.model import EducationalContent, User, UserRole, UserStatus
from edu_domain.services import EduCore, NewContent, NewUser, Scope
from tests.unit.conftest import PASSWORD, World, make_world
from tests.unit.policy_oracle import ST, TA, A, ContentM, Model, P, S, T, UserM, expect

# ---------------------------------------------------------------------- running it


@define
class Run:
    world: World
    other: UUID
    stranger: UUID
    model: Model = field(factory=Model)
    serial: itertools.count[int] = field(factory=lambda: itertools.count(1))

    @property
    def core(self) -> EduCore:
        return self.world.core

    def scope(self, actor: str) -> Scope:
        org = self.world.org.id
        if actor == "system":
            return Scope.system(org)
        if actor == "anonymous":
            return Scope.anonymous(org)
        if actor == "stranger":
            return Scope(org, self.stranger)
        return Scope(org, self.model.users[actor].id)

    def uid(self, key: str) -> UUID:
        found = self.model.users[key].id
        assert found is not None
        return found

    def cid(self, key: str) -> UUID:
        found = self.model.content[key].id
        assert found is not None
        return found


async def _new_user(run: Run, scope: Scope, role: str) -> tuple[str, Any]:
    n = next(run.serial)
    new = NewUser(
        email=f"u{n}@example.org",
        username=f"user{n}",
        password=PASSWORD,
        role=role,
        status="active",
        email_verified=True,
    )
    return f"u{n}", await run.core.users.register(scope, new, send_verification=False)


async def perform(run: Run, actor: str, action: str, arg: Any) -> Any:
    c, s = run.core, run.scope(actor)
    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "read": lambda: c.users.find(s),
        "statistics": lambda: c.users.statistics(s),
        "rename_org": lambda: c.organizations.rename(s, f"School {next(run.serial)}"),
    }
    if action in calls:
        return await calls[action]()
    if action == "register":
        return await _new_user(run, s, arg)
    if action == "update":
        key, changes = arg
        return await c.users.update(s, run.uid(key), changes)
    user_calls: dict[str, Callable[[UUID], Awaitable[Any]]] = {
        "profile": lambda u: c.users.update_profile(s, u, {"bio": "Hello"}),
        "sessions": lambda u: c.auth.revoke_all_sessions(s, u),
        "change_password": lambda u: c.auth.change_password(s, u, PASSWORD, PASSWORD),
        "record_login": lambda u: c.auth.record_login(s, u),
        "delete": lambda u: c.users.delete(s, u),
        "restore": lambda u: c.users.restore(s, u),
        "verify": lambda u: c.verification.mark_verified(s, u),
    }
    if action in user_calls:
        return await user_calls[action](run.uid(arg))
    if action == "draft":
        title = f"Lesson {next(run.serial)}"
        return await c.content.create_draft(
            s, NewContent(title=title, body="Text.", author_id=run.uid(arg))
        )
    content_calls: dict[str, Callable[[UUID], Awaitable[Any]]] = {
        "edit": lambda i: c.content.update(s, i, {"body": "More text."}),
        "publish": lambda i: c.content.publish(s, i),
        "archive": lambda i: c.content.archive(s, i),
        "delete_content": lambda i: c.content.delete(s, i),
        "hard_delete": lambda i: c.content.delete(s, i, hard=True),
        "restore_content": lambda i: c.content.restore(s, i),
    }
    return await content_calls[action](run.cid(arg))


def outcome_of(result: Any, error: BaseException | None, action: str) -> str:
    if isinstance(error, PermissionDenied):
        return "denied"
    if isinstance(error, InvalidState):
        return "invalid"
    if isinstance(error, NotFound):
        return "missing"
    if isinstance(error, ValidationError):
        return "rejected"
    if error is not None:
        raise error
    if action in ("delete", "delete_content", "hard_delete") and result is False:
        return "missing"
    return "ok"


def apply(run: Run, action: str, arg: Any, result: Any) -> None:
    """What an allowed call changed, in the model."""
    m = run.model
    if action == "register":
        key, account = result
        m.users[key] = UserM(role=arg, id=account.user.id)
    elif action == "update":
        key, changes = arg
        m.users[key].role = changes.get("role", m.users[key].role)
        m.users[key].status = changes.get("status", m.users[key].status)
    elif action in ("delete", "restore"):
        m.users[arg].deleted = action == "delete"
    elif action == "draft":
        m.content[f"c{len(m.content)}"] = ContentM(author=arg, id=result.id)
    elif action in ("publish", "archive"):
        m.content[arg].status = "published" if action == "publish" else "archived"
    elif action in ("delete_content", "restore_content"):
        m.content[arg].deleted = action == "delete_content"
    elif action == "hard_delete":
        m.content[arg].gone = True


def check_store(run: Run) -> None:
    """The stored rows say what the model says (and an organization keeps an admin)."""
    rows = run.world.store.rows(User)
    for key, user in run.model.users.items():
        row = rows[user.id]  # type: ignore[index]
        assert (row["role"].value, row["status"].value) == (user.role, user.status), key
        assert (row["deleted_at"] is not None) == user.deleted, key
    stored = run.world.store.rows(EducationalContent)
    for key, item in run.model.content.items():
        if item.gone:
            assert item.id not in stored, key
            continue
        row = stored[item.id]  # type: ignore[index]
        assert (row["status"].value, row["deleted_at"] is not None) == (item.status, item.deleted)
    admins = [
        r
        for r in rows.values()
        if r["organization_id"] == run.world.org.id
        and r["role"] is UserRole.ADMIN
        and r["status"] is UserStatus.ACTIVE
        and r["deleted_at"] is None
    ]
    assert admins, "the organization lost its last active administrator"


# ---------------------------------------------------------------------- the property

ROLES = [S, P, TA, T, ST, A]
USER_ACTIONS = ["update", "profile", "sessions", "change_password", "record_login"]
MANAGER_ACTIONS = ["delete", "restore", "verify"]
CONTENT_ACTIONS = ["edit", "publish", "archive", "delete_content", "hard_delete"]
ACTIONS = [
    "read",
    "statistics",
    "rename_org",
    "register",
    *USER_ACTIONS,
    *USER_ACTIONS[:1] * 3,  # updates carry the role and status changes: draw them more
    *MANAGER_ACTIONS,
    "draft",
    *CONTENT_ACTIONS,
    "restore_content",
]
CHANGES = st.one_of(
    st.fixed_dictionaries({"full_name": st.just("Renamed")}),
    st.fixed_dictionaries({"role": st.sampled_from(ROLES)}),
    st.fixed_dictionaries(
        {"status": st.sampled_from(["active", "suspended", "deactivated", "pending"])}
    ),
    st.fixed_dictionaries({"role": st.sampled_from(ROLES), "full_name": st.just("Both")}),
)
#: Steps run and the outcomes seen, over the whole test (reported by the test).
TALLY: dict[str, int] = {}


async def setup(admins: int) -> Run:
    world = await make_world()
    other = await world.new_org("Shelbyville")
    stranger = (await world.user("stranger", org=other, role=UserRole.ADMIN)).user.id
    run = Run(world, other.id, stranger)
    for role in [A] * admins + [ST, T, TA, S, P, T, ST]:
        key, account = await _new_user(run, Scope.system(world.org.id), role)
        run.model.users[key] = UserM(role=role, id=account.user.id)
    # a suspended teacher and a deleted staff member from the start: actors who may not act
    *_, suspended, deleted = run.model.users
    for key, action, change in (
        (suspended, "update", {"status": "suspended"}),
        (deleted, "delete", None),
    ):
        arg = (key, change) if change else key
        apply(run, action, arg, await perform(run, "system", action, arg))
    for role in (T, S):  # a teacher's and a student's draft
        author = next(k for k, u in run.model.users.items() if u.role == role)
        apply(run, "draft", author, await perform(run, "system", "draft", author))
    return run


def draw_step(data: st.DataObject, m: Model) -> tuple[str, str, Any]:
    actor = data.draw(
        st.sampled_from(["system", "anonymous", "stranger", *sorted(m.users) * 3]),
        label="actor",
    )
    action = data.draw(st.sampled_from(ACTIONS), label="action")
    admins = [k for k, u in m.users.items() if u.role == A]
    users = st.sampled_from(sorted(m.users) + admins * 3)  # the invariant's cases come often
    arg: Any
    if action == "register":
        arg = data.draw(st.sampled_from(ROLES), label="role")
    elif action == "update":
        arg = (data.draw(users, label="target"), data.draw(CHANGES, label="changes"))
    elif action in (*USER_ACTIONS, *MANAGER_ACTIONS):
        arg = data.draw(users, label="target")
    elif action == "draft":
        own = st.just(actor) if actor in m.users else users
        arg = data.draw(st.one_of(own, own, users), label="author")
    elif action in (*CONTENT_ACTIONS, "restore_content"):
        arg = data.draw(st.sampled_from(sorted(m.content)), label="content")
    else:
        arg = None
    return actor, action, arg


@settings(max_examples=100, deadline=None)
@given(admins=st.integers(1, 2), steps=st.integers(1, 25), data=st.data())
def test_every_outcome_is_the_one_the_policy_table_documents(
    admins: int, steps: int, data: st.DataObject
) -> None:
    with asyncio.Runner() as runner:
        run = runner.run(setup(admins))
        check_store(run)
        for _ in range(steps):
            actor, action, arg = draw_step(data, run.model)
            predicted = expect(run.model, actor, action, arg)
            result, error = None, None
            try:
                result = runner.run(perform(run, actor, action, arg))
            except (PermissionDenied, InvalidState, NotFound, ValidationError) as refused:
                error = refused
            seen = outcome_of(result, error, action)
            assert seen == predicted, (actor, action, arg, error)
            if seen == "ok":
                apply(run, action, arg, result)
            check_store(run)
            TALLY[seen] = TALLY.get(seen, 0) + 1
            TALLY["steps"] = TALLY.get("steps", 0) + 1


def teardown_module() -> None:
    print(f"\npolicy table property: {dict(sorted(TALLY.items()))}")
