"""Every public use case, fed hostile input: only domain errors come out, and a failing call
writes nothing (an unscoped snapshot of every row is the same before and after).

Runs on memory and SQLite with a larger budget, on PostgreSQL with a smaller one, and on the
production container (read-through cache in memory, and on Redis).
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from attrs import define, field
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edu_domain.errors import (
    AccountLocked,
    AuthenticationFailed,
    DomainError,
    RetryableError,
    UnavailableError,
)
from edu_domain.model import Organization
from edu_domain.services import ContentSearch, EduCore, NewContent, NewUser, Scope
from edu_domain.services.commands import CONTENT_UPDATABLE, PROFILE_UPDATABLE, USER_UPDATABLE
from edu_infra.sqlalchemy.errors import DatabaseError
from tests.reliability.conftest import STACKS, Stack, changed_rows, snapshot_of
from tests.reliability.hostile import (
    NASTY_TEXT,
    RANDOM_ID,
    anything,
    metadata,
    queries,
    text,
    unwrap,
)

PASSWORD = "correct horse battery"
Draw = Callable[..., Any]  # hypothesis' data.draw
#: True: keep going after a failing example and print every distinct problem (triage mode)
COLLECT = False
BUDGET = {"memory": 400, "sqlite": 150, "postgres": 40, "container": 150, "container+redis": 60}
#: Domain errors that would mean a driver or infrastructure failure leaked through.
LEAKS = (DatabaseError, RetryableError, UnavailableError)
#: Refusals that record something on purpose (the failed-login counter, the lockout).
WRITES_ON_PURPOSE = (AuthenticationFailed, AccountLocked)


@define
class World:
    """Two organizations with users and content; `a` is the caller's, `b` a stranger's."""

    core: EduCore
    a: Organization
    b: Organization
    refs: dict[str, Any] = field(factory=dict)
    outcomes: Counter[str] = field(factory=Counter)

    def scope(self, kind: str) -> Any:
        return {
            "admin": Scope(self.a.id, self.refs["admin"]),
            "teacher": Scope(self.a.id, self.refs["teacher"]),
            "system": Scope.system(self.a.id),
            "anonymous": Scope(self.a.id),
            "stranger-actor": Scope(self.a.id, self.refs["b_user"]),
            "unknown-org": Scope(RANDOM_ID, self.refs["admin"]),
            "not-a-uuid": Scope("not-a-uuid"),  # type: ignore[arg-type]
            "none": Scope(None),  # type: ignore[arg-type]
        }[kind]


async def build_world(stack: Stack) -> World:
    core = stack.core
    a, admin = await core.organizations.bootstrap(
        "Alpha", NewUser(email="admin@alpha.org", username="admin", password=PASSWORD)
    )
    b, stranger = await core.organizations.bootstrap(
        "Beta", NewUser(email="admin@beta.org", username="admin", password=PASSWORD)
    )
    teacher = await core.users.register(
        Scope(a.id, admin.user.id),
        NewUser(email="t@alpha.org", username="teacher", password=PASSWORD, role="teacher"),
    )
    draft = await core.content.create_draft(
        Scope(a.id, teacher.user.id), NewContent(title="Draft", body="Text.", tags=["math"])
    )
    theirs = await core.content.create_draft(
        Scope(b.id, stranger.user.id), NewContent(title="Theirs", body="Secret text.")
    )
    world = World(core, a, b)
    world.refs.update(
        admin=admin.user.id,
        teacher=teacher.user.id,
        draft=draft.id,
        draft_slug=draft.slug,
        a_org=a.id,
        b_org=b.id,
        b_user=stranger.user.id,
        b_content=theirs.id,
        b_slug=theirs.slug,
        random=RANDOM_ID,
    )
    return world


REFS = ["admin", "teacher", "draft", "a_org", "b_org", "b_user", "b_content", "random"]


def ids(d: Draw, w: World) -> Any:
    """Mostly real ids (own, another tenant's, unknown), sometimes anything at all."""
    if d(st.integers(0, 3)):
        return w.refs[d(st.sampled_from(REFS))]
    return d(anything)


def maybe(valid: Any, hostile: st.SearchStrategy[Any] = anything) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(valid), text, hostile)


def new_user(d: Draw) -> Any:
    if not d(st.integers(0, 4)):
        return d(anything)
    n = d(st.integers(0, 10**6))
    return NewUser(
        email=d(maybe(f"u{n}@alpha.org")),
        username=d(maybe(f"user{n}")),
        password=d(maybe(PASSWORD)),
        full_name=d(st.none() | text),
        role=d(maybe("student")),
        status=d(maybe("pending")),
        email_verified=d(maybe(False)),
        bio=d(st.none() | text),
        skills=d(maybe(("python",))),
        avatar_url=d(st.none() | maybe("https://a.org/x.png")),
        timezone=d(maybe("UTC")),
        locale=d(maybe("en")),
    )


def import_row(d: Draw) -> Any:
    """A plain row for `users.import_users`: mostly well formed, with hostile values or keys."""
    if not d(st.integers(0, 4)):
        return d(anything)
    n = d(st.integers(0, 10**6))
    row = {
        "email": d(maybe(f"i{n}@alpha.org")),
        "username": d(maybe(f"imp{n}")),
        "hashed_password": d(maybe("$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA")),
        "role": d(maybe("student")),
        "status": d(maybe("active")),
    }
    if d(st.booleans()):
        row[d(st.sampled_from([*NASTY_TEXT, "organization_id", "version", "id"]))] = d(anything)
    return row


def new_content(d: Draw, w: World) -> Any:
    if not d(st.integers(0, 4)):
        return d(anything)
    return NewContent(
        title=d(maybe("A Lesson")),
        body=d(maybe("Body.")),
        slug=d(st.none() | text),
        content_type=d(maybe("lesson")),
        difficulty=d(maybe("beginner")),
        tags=d(maybe(("math",), st.lists(text, max_size=25) | anything)),
        metadata=d(metadata),
        author_id=d(st.none() | st.just(w.refs["teacher"])) or ids(d, w),
    )


def changes(d: Draw, allowed: frozenset[str]) -> Any:
    if not d(st.integers(0, 5)):
        return d(anything)
    keys = st.one_of(st.sampled_from(sorted(allowed)), st.sampled_from(NASTY_TEXT))
    return d(st.dictionaries(keys, st.one_of(anything, metadata), max_size=3))


def token(d: Draw, w: World) -> Any:
    shapes = st.one_of(
        text,
        anything,
        st.builds(lambda a, b: f"{a}.{b}", st.sampled_from([RANDOM_ID.hex, w.a.id.hex]), text),
        st.builds(lambda a, b, c: f"{a}.{b}.{c}", st.sampled_from([w.a.id.hex, "zz"]), text, text),
    )
    return d(shapes)


Call = Callable[[EduCore, World, Draw, Any], Awaitable[Any]]


CALLS: dict[str, Call] = {
    "organizations.create": lambda c, w, d, s: c.organizations.create(d(text), d(st.none() | text)),
    "organizations.bootstrap": lambda c, w, d, s: c.organizations.bootstrap(
        d(maybe("New School")), new_user(d), slug=d(st.none() | text)
    ),
    "organizations.get": lambda c, w, d, s: c.organizations.get(ids(d, w)),
    "organizations.get_by_slug": lambda c, w, d, s: c.organizations.get_by_slug(d(anything)),
    "organizations.list": lambda c, w, d, s: c.organizations.list(
        skip=d(anything | st.integers()), limit=d(anything | st.integers())
    ),
    "organizations.rename": lambda c, w, d, s: c.organizations.rename(s, d(anything)),
    "users.register": lambda c, w, d, s: c.users.register(s, new_user(d)),
    "users.create_many": lambda c, w, d, s: c.users.create_many(
        s, [new_user(d) for _ in range(d(st.integers(0, 3)))] if d(st.booleans()) else d(anything)
    ),
    "users.import_users": lambda c, w, d, s: c.users.import_users(
        s, [import_row(d) for _ in range(d(st.integers(0, 3)))] if d(st.booleans()) else d(anything)
    ),
    "users.get": lambda c, w, d, s: c.users.get(s, ids(d, w)),
    "users.get_account": lambda c, w, d, s: c.users.get_account(s, ids(d, w)),
    "users.get_by_email": lambda c, w, d, s: c.users.get_by_email(s, d(anything)),
    "users.get_by_username": lambda c, w, d, s: c.users.get_by_username(s, d(anything)),
    "users.get_active_users": lambda c, w, d, s: c.users.get_active_users(
        s, role=d(st.none() | anything), skip=d(anything), limit=d(anything)
    ),
    "users.find": lambda c, w, d, s: c.users.find(s, unwrap(d(queries())), include_deleted=True),
    "users.get_all": lambda c, w, d, s: c.users.get_all(s, skip=d(anything), limit=d(anything)),
    "users.count": lambda c, w, d, s: c.users.count(s, unwrap(d(queries()))),
    "users.update": lambda c, w, d, s: c.users.update(
        s, ids(d, w), changes(d, USER_UPDATABLE), expected_version=d(st.none() | anything)
    ),
    "users.update_profile": lambda c, w, d, s: c.users.update_profile(
        s, ids(d, w), changes(d, PROFILE_UPDATABLE)
    ),
    "users.delete": lambda c, w, d, s: c.users.delete(s, ids(d, w), hard=d(st.booleans())),
    "users.restore": lambda c, w, d, s: c.users.restore(s, ids(d, w)),
    "users.statistics": lambda c, w, d, s: c.users.statistics(s),
    "verification.verify_email": lambda c, w, d, s: c.verification.verify_email(s, token(d, w)),
    "verification.mark_verified": lambda c, w, d, s: c.verification.mark_verified(s, ids(d, w)),
    "verification.resend": lambda c, w, d, s: c.verification.resend(s, ids(d, w)),
    "verification.pending_tokens": lambda c, w, d, s: c.verification.pending_tokens(s, ids(d, w)),
    "auth.authenticate": lambda c, w, d, s: c.auth.authenticate(
        s,
        d(maybe("admin")),
        d(maybe(PASSWORD)),
        ip_address=d(st.none() | maybe("127.0.0.1")),
        user_agent=d(st.none() | anything),
    ),
    "auth.reject": lambda c, w, d, s: c.auth.reject(d(maybe(PASSWORD))),
    "auth.record_login": lambda c, w, d, s: c.auth.record_login(
        s, ids(d, w), ip_address=d(st.none() | anything), user_agent=d(st.none() | anything)
    ),
    "auth.resolve": lambda c, w, d, s: c.auth.resolve(token(d, w)),
    "auth.logout": lambda c, w, d, s: c.auth.logout(token(d, w)),
    "auth.get_active_sessions": lambda c, w, d, s: c.auth.get_active_sessions(s, ids(d, w)),
    "auth.revoke_session": lambda c, w, d, s: c.auth.revoke_session(s, ids(d, w)),
    "auth.revoke_all_sessions": lambda c, w, d, s: c.auth.revoke_all_sessions(s, ids(d, w)),
    "auth.count_active_sessions": lambda c, w, d, s: c.auth.count_active_sessions(s),
    "auth.change_password": lambda c, w, d, s: c.auth.change_password(
        s, ids(d, w), d(maybe(PASSWORD)), d(maybe("another long password"))
    ),
    "auth.request_password_reset": lambda c, w, d, s: c.auth.request_password_reset(
        s, d(maybe("t@alpha.org"))
    ),
    "auth.reset_password": lambda c, w, d, s: c.auth.reset_password(
        s, token(d, w), d(maybe("another long password"))
    ),
    "content.create_draft": lambda c, w, d, s: c.content.create_draft(s, new_content(d, w)),
    "content.get": lambda c, w, d, s: c.content.get(s, ids(d, w)),
    "content.get_by_slug": lambda c, w, d, s: c.content.get_by_slug(
        s, d(st.sampled_from([w.refs["draft_slug"], w.refs["b_slug"]]) | anything)
    ),
    "content.update": lambda c, w, d, s: c.content.update(
        s, ids(d, w), changes(d, CONTENT_UPDATABLE), expected_version=d(st.none() | anything)
    ),
    "content.publish": lambda c, w, d, s: c.content.publish(s, ids(d, w)),
    "content.archive": lambda c, w, d, s: c.content.archive(s, ids(d, w)),
    "content.delete": lambda c, w, d, s: c.content.delete(s, ids(d, w), hard=d(st.booleans())),
    "content.restore": lambda c, w, d, s: c.content.restore(s, ids(d, w)),
    "content.search": lambda c, w, d, s: c.content.search(
        s,
        ContentSearch(
            tags=d(maybe(("math",))),
            content_type=d(st.none() | anything),
            difficulty=d(st.none() | anything),
            status=d(st.none() | anything),
            author_id=d(st.none() | anything),
            text=d(st.none() | text),
            order_by=d(
                st.lists(st.sampled_from(["-created_at", *NASTY_TEXT]), max_size=2).map(tuple)
            ),
            skip=d(anything | st.integers()),
            limit=d(anything | st.integers()),
            cursor=d(st.none() | text),
        ),
    ),
    "content.find_by_tags": lambda c, w, d, s: c.content.find_by_tags(
        s, d(anything), skip=d(anything), limit=d(anything)
    ),
    "content.find": lambda c, w, d, s: c.content.find(s, unwrap(d(queries()))),
    "content.count": lambda c, w, d, s: c.content.count(s, unwrap(d(queries()))),
}
SCOPES = [
    "admin",
    "admin",
    "teacher",
    "system",
    "anonymous",
    "stranger-actor",
    "unknown-org",
    "not-a-uuid",
]


def test_every_use_case_is_covered() -> None:
    public = {
        f"{area}.{name}"
        for area in ("organizations", "users", "verification", "auth", "content")
        for name in dir(_services()[area])
        if not name.startswith("_")
    }
    aliases = {
        "users.create_user_with_profile",
        "users.get_user_statistics",
        "auth.invalidate_user_sessions",
        "content.create",
    }
    assert public - aliases - set(CALLS) == set()


def _services() -> dict[str, type]:
    from edu_domain.services import (
        AuthService,
        ContentService,
        OrganizationService,
        UserService,
        VerificationService,
    )

    return {
        "organizations": OrganizationService,
        "users": UserService,
        "verification": VerificationService,
        "auth": AuthService,
        "content": ContentService,
    }


@pytest.mark.parametrize(
    "name",
    [
        "memory",
        "sqlite",
        "container",
        pytest.param("postgres", marks=[pytest.mark.postgres]),
        pytest.param("container+redis", marks=[pytest.mark.redis]),
    ],
)
def test_hostile_input_gets_domain_errors_and_failed_calls_write_nothing(name: str) -> None:
    if name == "postgres":
        from tests.reliability.conftest import reliability_database

        asyncio.run(reliability_database())  # skips loudly (or fails) without PostgreSQL
    failures: list[str] = []
    with asyncio.Runner() as runner:
        stack_cm = STACKS[name]()
        stack = runner.run(stack_cm.__aenter__())
        try:
            world = runner.run(build_world(stack))

            @settings(
                max_examples=BUDGET[name],
                suppress_health_check=list(HealthCheck),
                deadline=None,
                database=None,
            )
            @given(
                call=st.sampled_from(sorted(CALLS)),
                scope=st.sampled_from(SCOPES),
                data=st.data(),
            )
            def check(call: str, scope: str, data: st.DataObject) -> None:
                problem = runner.run(_one(stack, world, call, scope, data.draw))
                if problem:
                    failures.append(problem)
                assert not problem or COLLECT, problem

            check()
        finally:
            runner.run(stack_cm.__aexit__(None, None, None))
    print(f"\nhostile use-case calls on {name}: {dict(sorted(world.outcomes.items()))}")
    if COLLECT:
        for f in sorted({re.sub(r"0x[0-9a-f]+|[0-9a-f-]{32,36}", "#", f)[:300] for f in failures}):
            print(f)
    assert failures == []


async def _one(stack: Stack, world: World, call: str, scope: str, draw: Draw) -> str | None:
    before = await snapshot_of(stack.factory)
    try:
        await CALLS[call](world.core, world, draw, world.scope(scope))
    except DomainError as error:
        world.outcomes[type(error).__name__] += 1
        if isinstance(error, LEAKS):
            return f"{call} as {scope}: infrastructure error leaked: {error!r}"
        if isinstance(error, WRITES_ON_PURPOSE):
            return None
        changed = changed_rows(before, await snapshot_of(stack.factory))
        if changed:
            return f"{call} as {scope} raised {error!r} but wrote {changed[:3]}"
        return None
    except Exception as error:
        return f"{call} as {scope}: non-domain {type(error).__name__}: {error!r}"[:2_000]
    world.outcomes["ok"] += 1
    if call.startswith("organizations."):
        return None  # system work: takes organization ids, not a tenant scope
    marks = (world.b.id.hex, str(world.b.id))
    changed = changed_rows(before, await snapshot_of(stack.factory))
    crossed = [row for row in changed if any(mark in row for mark in marks)]
    if crossed:
        return f"{call} as {scope} changed another tenant's rows: {crossed[:3]}"
    return None
