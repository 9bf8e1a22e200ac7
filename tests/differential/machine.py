"""The use-case state machine both differential tests build on.

`UseCaseMachine` holds the rules: every public use case of `EduCore` (and the unit of
work's find/count/count_by) called with random, mostly valid input, over several tenants,
with ids drawn from any tenant. It does not say what to check: a subclass implements
`call(what, org, fn)` (run `fn` on its side(s) and check the outcome) and `refresh_rows()`
(the committed rows, which the rules draw realistic query values and ids from).
- `tests/differential/test_memory_vs_sql.py`: memory vs SQL, side by side;
- `tests/differential/test_tenant_isolation.py`: one adapter, nothing crosses tenants.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any, ClassVar
from uuid import UUID

import attrs
from attrs import frozen
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, multiple, rule

from edu_domain.model import (
    ENTITY_TYPES,
    ContentStatus,
    ContentType,
    DifficultyLevel,
    EducationalContent,
    LoginSession,
    Organization,
    User,
    UserProfile,
    UserRole,
    UserStatus,
    UserToken,
)
from edu_domain.query import F, Query, describe
from edu_domain.services import ContentSearch, EduCore, NewContent, NewUser, Scope
from edu_infra.memory import ManualClock
from tests.differential.support import (
    ALPHABET,
    Loop,
    Outcome,
    Side,
    StepCounter,
    multiline_texts,
    nonempty_texts,
    observed_values,
    open_backend,
    queries,
    texts,
)

# ----------------------------------------------------------------------------- inputs

LOCALS = ["ann", "bob", "carl", "dora", "eve", "finn"]
DOMAINS = ["example.org", "school.edu"]
PASSWORDS = ["correct horse", "battery staple", "Pässwörd-123"]
#: Caller-given session ids for `record_login`: valid ones that repeat, and refused ones.
JTIS = ["jwt-1", "jwt-2", "0f8fad5b-d9cb-469f-a165-70867728950e", "bad.jti", "", "x" * 65]
#: Caller-given expiries, from now: in the past, soon, at and beyond the policy's maximum.
AHEAD = [{"seconds": -1}, {"seconds": 0}, {"hours": 1}, {"days": 30}, {"days": 31}]
#: Random queries per query rule: queries are cheap next to the writes that feed them.
QUERIES_PER_STEP = 3


def _vary_case(draw: st.DrawFn, text: str) -> str:
    return "".join(c.upper() if draw(st.booleans()) else c for c in text)


def valid_or(
    valid: st.SearchStrategy[Any], invalid: st.SearchStrategy[Any], one_in: int = 20
) -> Any:
    """Mostly `valid`, invalid about once in `one_in` draws (so most calls get far).

    Compares with a middle value: hypothesis favours the bounds of an integer range.
    """
    middle = one_in // 2
    return st.integers(0, one_in - 1).flatmap(lambda i: invalid if i == middle else valid)


@st.composite
def _emails(draw: st.DrawFn) -> str:
    address = f"{draw(st.sampled_from(LOCALS))}@{draw(st.sampled_from(DOMAINS))}"
    address = _vary_case(draw, address) if draw(st.integers(0, 3)) == 2 else address
    return f" {address} " if draw(st.integers(0, 10)) == 5 else address


def emails() -> st.SearchStrategy[str]:
    invalid = st.sampled_from(["no-at", "", "a@b", "x" * 70 + "@e.org", "é@e.org"])
    return valid_or(_emails(), invalid)


@st.composite
def _usernames(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from([*LOCALS, "eve_1", "x.y"]))
    return _vary_case(draw, name) if draw(st.integers(0, 5)) == 3 else name


def usernames() -> st.SearchStrategy[str]:
    return valid_or(_usernames(), st.sampled_from(["ab", "-ann", "ann!", "é" * 4, "x" * 33]))


passwords = valid_or(
    st.one_of(st.sampled_from(PASSWORDS), st.text(alphabet=ALPHABET, min_size=8, max_size=14)),
    st.sampled_from(["short", "bad\x01password"]),
)
full_names = valid_or(st.one_of(st.none(), nonempty_texts), st.sampled_from(["", "\x07bell"]))
roles = valid_or(
    st.one_of(st.sampled_from(list(UserRole)), st.sampled_from(["teacher", "admin"])),
    st.just("wizard"),
)
statuses = valid_or(st.sampled_from(list(UserStatus)), st.just("gone"))
skills = st.lists(st.one_of(nonempty_texts, st.just(" padded ")), max_size=3)
timezones = valid_or(st.sampled_from(["UTC", "Europe/Berlin"]), st.just("Mars/Base"))
locales = valid_or(st.sampled_from(["en", "pt-BR"]), st.just("1x"))
avatars = valid_or(st.sampled_from([None, "https://example.org/a.png"]), st.just("ftp://x"))


@st.composite
def new_users(draw: st.DrawFn) -> NewUser:
    return NewUser(
        email=draw(emails()),
        username=draw(usernames()),
        password=draw(passwords),
        full_name=draw(full_names),
        role=draw(roles),
        status=draw(st.sampled_from([UserStatus.PENDING, UserStatus.PENDING, UserStatus.ACTIVE])),
        email_verified=draw(st.booleans()),
        bio=draw(st.one_of(st.none(), multiline_texts)),
        skills=draw(skills),
        avatar_url=draw(avatars),
        timezone=draw(timezones),
        locale=draw(locales),
    )


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)
metadata_values = st.dictionaries(
    texts,
    st.recursive(
        json_scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(texts, inner, max_size=3)
        ),
        max_leaves=6,
    ),
    max_size=3,
)
TAG_POOL = ["python", "Math", "math", " data science ", "c++", "é-tag", "x.y"]
tags = valid_or(
    st.lists(st.sampled_from(TAG_POOL), max_size=3),
    st.lists(st.sampled_from(["#bad", "x" * 41, ""]), min_size=1, max_size=2),
)
slugs = valid_or(
    st.one_of(st.none(), st.sampled_from(["intro", "intro-2", "algebra"])), st.just("Bad Slug")
)
titles = valid_or(
    st.one_of(nonempty_texts, st.sampled_from(["Intro", "intro", "Ärger & Öl"])), st.just("")
)
bodies = st.one_of(multiline_texts, st.just("Some text."))
content_types = valid_or(st.sampled_from(list(ContentType)), st.just("podcast"))
difficulties = valid_or(st.sampled_from(list(DifficultyLevel)), st.just("impossible"))


@frozen
class LoginRef:
    """A login session: its organization, id and bearer token."""

    organization_id: UUID
    session_id: UUID
    token: str


def counted(method: Callable[..., Any]) -> Callable[..., Any]:
    """Count one executed step per rule call (reported at the end of the run)."""

    @functools.wraps(method)
    def step(self: UseCaseMachine, *args: Any, **kwargs: Any) -> Any:
        self.counter.add(self.backend)
        return method(self, *args, **kwargs)

    return step


Call = Callable[[Side], Awaitable[Any]]


class UseCaseMachine(RuleBasedStateMachine):
    """Random use-case calls over several tenants; subclasses decide what to check."""

    backend: ClassVar[str] = "memory"
    postgres_url: ClassVar[str | None] = None
    counter: ClassVar[StepCounter] = StepCounter()

    orgs = Bundle("orgs")
    users = Bundle("users")
    contents = Bundle("contents")
    logins = Bundle("logins")

    def __init__(self) -> None:
        super().__init__()
        self.loop = Loop()
        self.clock = ManualClock()
        self.passwords: dict[UUID, str] = {}
        self.mailed: list[str] = []
        self.rows: dict[type, list[dict[str, Any]]] = {cls: [] for cls in ENTITY_TYPES}
        self._opened: list[AbstractAsyncContextManager[Any]] = []
        self.seeded: dict[type, list[UUID]] = {}
        #: Whether the current step used an id of another tenant (reset by subclasses).
        self.foreign = False

    def open(self, name: str) -> Any:
        """Open an adapter on this machine's loop (closed again in `teardown`)."""
        backend = open_backend(name, self.postgres_url)
        build = self.loop.run(backend.__aenter__())
        self._opened.append(backend)
        return build

    def teardown(self) -> None:
        try:
            for backend in reversed(self._opened):
                self.loop.run(backend.__aexit__(None, None, None))
        finally:
            self.loop.close()

    # ------------------------------------------------------------------ hooks

    def call(self, what: str, org: UUID | None, fn: Call) -> Outcome:
        """Run `fn` for tenant `org` (None: system work) and check what it did."""
        raise NotImplementedError

    def core(self, what: str, org: UUID | None, fn: Callable[[EduCore], Awaitable[Any]]) -> Outcome:
        return self.call(what, org, lambda side: fn(side.core))

    def note_mail(self, side: Side, count: int) -> None:
        """Keep the tokens of the last `count` mails of `side` for verify/reset rules."""
        if count:
            self.mailed.extend(mail.token for mail in side.notifier.sent[-count:])

    # ------------------------------------------------------------------ picking

    def owner_of(self, entity_id: UUID) -> UUID | None:
        for cls in ENTITY_TYPES:
            for row in self.rows[cls]:
                if row["id"] == entity_id:
                    return row["id"] if cls is Organization else row["organization_id"]
        return None

    def home(self, data: st.DataObject, org: UUID, entity_id: UUID) -> UUID:
        """Mostly the entity's own organization (so calls get far), sometimes `org`."""
        owner = self.owner_of(entity_id)
        if owner is not None and data.draw(st.integers(0, 3), label="own tenant"):
            return owner
        self.foreign |= owner is not None and owner != org
        return org

    def mark_foreign(self, org: UUID, *entity_ids: UUID | None) -> None:
        """Note that the step used an id of another tenant than the one it acts for."""
        for entity_id in entity_ids:
            owner = self.owner_of(entity_id) if entity_id is not None else None
            self.foreign |= owner is not None and owner != org

    def scope(self, data: st.DataObject, org: UUID, user: UUID | None = None) -> Scope:
        """The tenant and who acts: the system, one of its users (`user` when given, the one a
        use case is about, is one), nobody, or any user (any tenant). The policy decides."""
        mine = [r["id"] for r in self.rows[User] if r["organization_id"] == org]
        if user is not None:
            mine.append(user)
        anyone = [r["id"] for r in self.rows[User]]
        kind = data.draw(st.integers(0, 9), label="actor kind")
        if kind < 4:
            return Scope.system(org)
        if kind == 8:
            return Scope.anonymous(org)
        pool = mine if kind < 8 else anyone
        actor = data.draw(st.sampled_from(pool), label="actor") if pool else None
        self.mark_foreign(org, actor)
        return Scope(org, actor)

    def reader(self, data: st.DataObject, org: UUID) -> Scope:
        """Who reads: mostly the system (the reads are what is compared), else a member."""
        if data.draw(st.integers(0, 3), label="member reads"):
            return Scope.system(org)
        return self.scope(data, org)

    def observed(self, cls: type) -> dict[str, list[Any]]:
        return observed_values(self.rows[cls])

    def remember(self, outcome: Outcome, new: NewUser) -> None:
        if outcome.ok and new.password is not None:
            self.passwords[outcome.value.user.id] = new.password

    def row(self, cls: type, entity_id: UUID) -> dict[str, Any] | None:
        return next((r for r in self.rows[cls] if r["id"] == entity_id), None)

    # ------------------------------------------------------------------ organizations

    @initialize(target=orgs, data=st.data())
    def seed_tenants(self, data: st.DataObject) -> Any:
        self.seed(data)
        return multiple(*self.seeded[Organization])

    @initialize(target=users, data=st.data())
    def seed_users(self, data: st.DataObject) -> Any:
        self.seed(data)
        return multiple(*self.seeded[User])

    @initialize(target=contents, data=st.data())
    def seed_contents(self, data: st.DataObject) -> Any:
        self.seed(data)
        return multiple(*self.seeded[EducationalContent])

    def seed(self, data: st.DataObject) -> None:
        """Tenants with a few users and drafts, so queries find something from the start.

        Runs once, from whichever initialize rule comes first (their order is arbitrary).
        The same addresses are used in every tenant: uniqueness is per organization.
        """
        if self.seeded:
            return
        self.seeded = {Organization: [], User: [], EducationalContent: []}
        for name in self.initial_tenants():
            outcome = self.core(
                f"create org {name!r}", None, lambda c, n=name: c.organizations.create(n)
            )
            assert outcome.ok, outcome.error
            org = outcome.value.id
            self.seeded[Organization].append(org)
            news = [
                NewUser(
                    email=f"{local}@{DOMAINS[i % 2]}",
                    username=local,
                    password=PASSWORDS[i % len(PASSWORDS)],
                    full_name=data.draw(st.one_of(st.none(), nonempty_texts), label="name"),
                    role=[UserRole.TEACHER, UserRole.STUDENT, UserRole.ADMIN][i % 3],
                    email_verified=i % 2 == 0,
                    status=UserStatus.ACTIVE if i % 2 == 0 else UserStatus.PENDING,
                )
                for i, local in enumerate(LOCALS[:4])
            ]
            outcome = self.core(
                "seed users",
                org,
                lambda c, o=org, n=news: c.users.create_many(Scope.system(o), n),
            )
            assert outcome.ok, outcome.error
            for account, new in zip(outcome.value, news, strict=True):
                self.remember(Outcome(account), new)
                self.seeded[User].append(account.user.id)
            teacher = outcome.value[0].user.id
            for i in range(3):
                new_content = NewContent(
                    title=data.draw(nonempty_texts, label="title"),
                    body=data.draw(bodies, label="body"),
                    tags=data.draw(st.lists(st.sampled_from(TAG_POOL), max_size=3), label="tags"),
                    content_type=data.draw(st.sampled_from(list(ContentType)), label="type"),
                    difficulty=data.draw(st.sampled_from(list(DifficultyLevel)), label="level"),
                    author_id=teacher,
                )
                outcome = self.core(
                    "seed draft",
                    org,
                    lambda c, o=org, n=new_content: c.content.create_draft(Scope.system(o), n),
                )
                assert outcome.ok, outcome.error
                self.seeded[EducationalContent].append(outcome.value.id)
                if i == 0:
                    self.core(
                        "seed publish",
                        org,
                        lambda c, o=org, cid=outcome.value.id: c.content.publish(
                            Scope.system(o), cid
                        ),
                    )
            self.clock.advance(seconds=1)

    def initial_tenants(self) -> tuple[str, ...]:
        return ("Springfield Elementary", "Shelbyville High")

    @rule(target=orgs, name=st.one_of(nonempty_texts, st.just("Springfield Elementary")))
    @counted
    def create_org(self, name: str) -> Any:
        outcome = self.core(f"create org {name!r}", None, lambda c: c.organizations.create(name))
        return multiple(outcome.value.id) if outcome.ok else multiple()

    @rule(org=orgs, target_org=orgs, name=valid_or(nonempty_texts, st.just("")), data=st.data())
    @counted
    def rename_org(self, org: UUID, target_org: UUID, name: str, data: st.DataObject) -> None:
        self.foreign |= org != target_org
        scope = self.scope(data, org)
        self.core(
            f"rename org {target_org} as tenant {org} by {scope}",
            org,
            lambda c: (
                c.organizations.rename(scope, name)
                if org == target_org
                else _rename_as(c, org, target_org, name)
            ),
        )

    @rule(org=orgs, skip=st.integers(0, 3), limit=st.integers(1, 3), data=st.data())
    @counted
    def read_orgs(self, org: UUID, skip: int, limit: int, data: st.DataObject) -> None:
        self.core("get org", None, lambda c: c.organizations.get(org))
        slugs = [r["slug"] for r in self.rows[Organization]] or ["none"]
        slug = data.draw(st.one_of(st.sampled_from(slugs), st.just("no-such-org")), label="slug")
        self.core(f"org by slug {slug!r}", None, lambda c: c.organizations.get_by_slug(slug))
        self.core("list orgs", None, lambda c: c.organizations.list(skip=skip, limit=limit))

    # ------------------------------------------------------------------ users

    @rule(target=users, org=orgs, new=new_users(), send=st.booleans(), data=st.data())
    @counted
    def register(self, org: UUID, new: NewUser, send: bool, data: st.DataObject) -> Any:
        scope = self.scope(data, org)
        outcome = self.core(
            f"register {new!r} send_verification={send}",
            org,
            lambda c: c.users.register(scope, new, send_verification=send),
        )
        self.remember(outcome, new)
        return multiple(outcome.value.user.id) if outcome.ok else multiple()

    @rule(target=users, org=orgs, news=st.lists(new_users(), max_size=3), data=st.data())
    @counted
    def create_many(self, org: UUID, news: list[NewUser], data: st.DataObject) -> Any:
        scope = self.scope(data, org)
        outcome = self.core(
            f"create_many {news!r} by {scope}", org, lambda c: c.users.create_many(scope, news)
        )
        if not outcome.ok:
            return multiple()
        for account, new in zip(outcome.value, news, strict=True):
            self.remember(Outcome(account), new)
        return multiple(*(account.user.id for account in outcome.value))

    @rule(
        org=orgs,
        user=users,
        name=st.sampled_from(
            ["email", "username", "full_name", "role", "status", "password", "id"]
        ),
        data=st.data(),
    )
    @counted
    def update_user(self, org: UUID, user: UUID, name: str, data: st.DataObject) -> None:
        org = self.home(data, org, user)
        strategies: dict[str, st.SearchStrategy[Any]] = {
            "email": emails(),
            "username": usernames(),
            "full_name": full_names,
            "role": roles,
            "status": statuses,
            "password": passwords,
            "id": st.uuids(),
        }
        value = data.draw(strategies[name], label="value")
        current = self.row(User, user)
        expected = data.draw(
            st.sampled_from([None, None, current["version"] if current else 1, 99]), label="version"
        )
        scope = self.scope(data, org, user)
        self.core(
            f"update user {name}={value!r} expected_version={expected} by {scope}",
            org,
            lambda c: c.users.update(scope, user, {name: value}, expected_version=expected),
        )

    @rule(
        org=orgs,
        user=users,
        changes=st.fixed_dictionaries(
            {},
            optional={
                "bio": st.one_of(st.none(), multiline_texts),
                "skills": skills,
                "avatar_url": avatars,
                "timezone": timezones,
                "locale": locales,
            },
        ),
        data=st.data(),
    )
    @counted
    def update_profile(
        self, org: UUID, user: UUID, changes: dict[str, Any], data: st.DataObject
    ) -> None:
        org = self.home(data, org, user)
        scope = self.scope(data, org, user)
        self.core(
            f"update profile {changes!r} by {scope}",
            org,
            lambda c: c.users.update_profile(scope, user, changes),
        )

    @rule(org=orgs, user=users, hard=st.booleans(), data=st.data())
    @counted
    def delete_user(self, org: UUID, user: UUID, hard: bool, data: st.DataObject) -> None:
        org = self.home(data, org, user)
        scope = self.scope(data, org, user)
        self.core(
            f"delete user hard={hard} by {scope}",
            org,
            lambda c: c.users.delete(scope, user, hard=hard),
        )

    @rule(org=orgs, user=users, data=st.data())
    @counted
    def restore_user(self, org: UUID, user: UUID, data: st.DataObject) -> None:
        org = self.home(data, org, user)
        scope = self.scope(data, org)
        self.core(f"restore user by {scope}", org, lambda c: c.users.restore(scope, user))

    @rule(org=orgs, user=users, login=st.one_of(emails(), usernames()), data=st.data())
    @counted
    def read_user(self, org: UUID, user: UUID, login: str, data: st.DataObject) -> None:
        org = self.home(data, org, user)
        scope = self.reader(data, org)
        self.core(f"get user by {scope}", org, lambda c: c.users.get(scope, user))
        self.core("get account", org, lambda c: c.users.get_account(scope, user))
        self.core(f"get by email {login!r}", org, lambda c: c.users.get_by_email(scope, login))
        self.core(
            f"get by username {login!r}", org, lambda c: c.users.get_by_username(scope, login)
        )
        role = data.draw(st.one_of(st.none(), roles), label="role")
        self.core(
            f"active users role={role!r}",
            org,
            lambda c: c.users.get_active_users(scope, role=role, skip=1, limit=2),
        )
        self.core("all users", org, lambda c: c.users.get_all(scope, limit=3))

    @rule(org=orgs, data=st.data())
    @counted
    def statistics(self, org: UUID, data: st.DataObject) -> None:
        scope = self.scope(data, org)
        self.core(f"statistics by {scope}", org, lambda c: c.users.statistics(scope))

    # ------------------------------------------------------------------ verification

    @rule(org=orgs, user=users, data=st.data())
    @counted
    def mark_verified(self, org: UUID, user: UUID, data: st.DataObject) -> None:
        org = self.home(data, org, user)
        scope = self.scope(data, org, user)
        self.core(
            f"mark verified by {scope}", org, lambda c: c.verification.mark_verified(scope, user)
        )

    @rule(org=orgs, user=users, data=st.data())
    @counted
    def resend_verification(self, org: UUID, user: UUID, data: st.DataObject) -> None:
        org = self.home(data, org, user)
        scope = self.scope(data, org, user)
        self.core(
            f"resend verification by {scope}", org, lambda c: c.verification.resend(scope, user)
        )
        self.core("pending tokens", org, lambda c: c.verification.pending_tokens(scope, user))

    def mail_token(self, data: st.DataObject) -> str:
        garbage = st.sampled_from(["", "x.y", "a" * 32 + ".s", "not a token"])
        if not self.mailed:
            return data.draw(garbage, label="token")
        return data.draw(valid_or(st.sampled_from(self.mailed), garbage, 8), label="token")

    @rule(org=orgs, data=st.data())
    @counted
    def verify_email(self, org: UUID, data: st.DataObject) -> None:
        token = self.mail_token(data)
        org = self.token_home(data, org, token)
        self.core(
            f"verify email {token!r}",
            org,
            lambda c: c.verification.verify_email(Scope.anonymous(org), token),
        )

    def token_home(self, data: st.DataObject, org: UUID, token: str) -> UUID:
        try:
            token_id = UUID(hex=token.split(".")[0])
        except ValueError:
            return org
        return self.home(data, org, token_id)

    # ------------------------------------------------------------------ login and sessions

    def login_of(self, user: UUID, kind: str) -> str:
        row = self.row(User, user)
        if row is None or kind == "unknown":
            return "nobody@example.org"
        return {"username": row["username"], "email": row["email"], "EMAIL": row["email"].upper()}[
            kind
        ]

    @rule(
        target=logins,
        org=orgs,
        user=users,
        kind=st.sampled_from(["username", "email", "EMAIL", "unknown"]),
        right=st.integers(0, 3),
        ip=st.sampled_from([None, "10.0.0.1", "::1", "not-an-ip"]),
        data=st.data(),
    )
    @counted
    def authenticate(
        self, org: UUID, user: UUID, kind: str, right: int, ip: str | None, data: st.DataObject
    ) -> Any:
        org = self.home(data, org, user)
        login = self.login_of(user, kind)
        password = self.passwords.get(user, PASSWORDS[0]) if right else "wrong password"
        outcome = self.core(
            f"authenticate {login!r} right_password={bool(right)}",
            org,
            lambda c: c.auth.authenticate(
                Scope.anonymous(org), login, password, ip_address=ip, user_agent="ua"
            ),
        )
        if not outcome.ok:
            return multiple()
        return multiple(LoginRef(org, outcome.value.session.id, outcome.value.token))

    @rule(
        target=logins,
        org=orgs,
        user=users,
        jti=st.one_of(st.none(), st.sampled_from(JTIS)),
        ahead=st.one_of(st.none(), st.sampled_from(AHEAD)),
        data=st.data(),
    )
    @counted
    def record_login(
        self, org: UUID, user: UUID, jti: str | None, ahead: dict[str, int] | None, data: Any
    ) -> Any:
        """A session the host opens itself, with its own jti and expiry now and then (a jti
        reused in the organization, an expiry past or beyond the policy's maximum)."""
        org = self.home(data, org, user)
        scope = self.scope(data, org, user)
        expires = None if ahead is None else self.clock.now() + timedelta(**ahead)
        outcome = self.core(
            f"record login jti={jti!r} expires_at={expires} by {scope}",
            org,
            lambda c: c.auth.record_login(scope, user, jti=jti, expires_at=expires),
        )
        if not outcome.ok:
            return multiple()
        return multiple(LoginRef(org, outcome.value.session.id, outcome.value.token))

    @rule(ref=logins, logout=st.booleans())
    @counted
    def resolve(self, ref: LoginRef, logout: bool) -> None:
        self.core("resolve token", ref.organization_id, lambda c: c.auth.resolve(ref.token))
        if logout:
            self.core("logout", ref.organization_id, lambda c: c.auth.logout(ref.token))

    @rule(org=orgs, ref=logins, data=st.data())
    @counted
    def revoke_session(self, org: UUID, ref: LoginRef, data: st.DataObject) -> None:
        if data.draw(st.integers(0, 3), label="own tenant"):
            org = ref.organization_id
        self.foreign |= org != ref.organization_id
        scope = self.scope(data, org)
        self.core(
            f"revoke session by {scope}",
            org,
            lambda c: c.auth.revoke_session(scope, ref.session_id),
        )

    @rule(org=orgs, user=users, data=st.data())
    @counted
    def revoke_all(self, org: UUID, user: UUID, data: st.DataObject) -> None:
        org = self.home(data, org, user)
        scope = self.scope(data, org, user)
        self.core(
            f"active sessions by {scope}", org, lambda c: c.auth.get_active_sessions(scope, user)
        )
        self.core("revoke all sessions", org, lambda c: c.auth.revoke_all_sessions(scope, user))
        self.core("count active sessions", org, lambda c: c.auth.count_active_sessions(scope))

    @rule(org=orgs, user=users, right=st.integers(0, 3), new=passwords, data=st.data())
    @counted
    def change_password(
        self, org: UUID, user: UUID, right: int, new: str, data: st.DataObject
    ) -> None:
        org = self.home(data, org, user)
        current = self.passwords.get(user, PASSWORDS[0]) if right else "wrong password"
        scope = self.scope(data, org, user)
        outcome = self.core(
            f"change password to {new!r} by {scope}",
            org,
            lambda c: c.auth.change_password(scope, user, current, new),
        )
        if outcome.ok:
            self.passwords[user] = new

    @rule(org=orgs, user=users, kind=st.sampled_from(["email", "EMAIL", "unknown"]), data=st.data())
    @counted
    def request_reset(self, org: UUID, user: UUID, kind: str, data: st.DataObject) -> None:
        org = self.home(data, org, user)
        email = self.login_of(user, kind)
        self.core(
            f"request reset {email!r}",
            org,
            lambda c: c.auth.request_password_reset(Scope.anonymous(org), email),
        )

    @rule(org=orgs, new=passwords, data=st.data())
    @counted
    def reset_password(self, org: UUID, new: str, data: st.DataObject) -> None:
        token = self.mail_token(data)
        org = self.token_home(data, org, token)
        outcome = self.core(
            f"reset password {token!r}",
            org,
            lambda c: c.auth.reset_password(Scope.anonymous(org), token, new),
        )
        if outcome.ok:
            stored = self.row(UserToken, UUID(hex=token.split(".")[0]))
            if stored is not None:
                self.passwords[stored["user_id"]] = new

    @rule(
        delta=st.sampled_from(
            [{"microseconds": 1}, {"seconds": 1}, {"minutes": 11}, {"hours": 2}, {"days": 3}]
        )
    )
    @counted
    def tick(self, delta: dict[str, int]) -> None:
        self.clock.advance(**delta)

    # ------------------------------------------------------------------ content

    @rule(
        target=contents,
        org=orgs,
        title=titles,
        body=bodies,
        slug=slugs,
        content_type=content_types,
        difficulty=difficulties,
        tags=tags,
        metadata=metadata_values,
        data=st.data(),
    )
    @counted
    def create_draft(
        self,
        org: UUID,
        title: str,
        body: str,
        slug: str | None,
        content_type: Any,
        difficulty: Any,
        tags: list[str],
        metadata: dict[str, Any],
        data: st.DataObject,
    ) -> Any:
        mine = [r["id"] for r in self.rows[User] if r["organization_id"] == org]
        anyone = [r["id"] for r in self.rows[User]] or [None]
        author = data.draw(
            valid_or(
                st.sampled_from(mine) if mine else st.none(), st.sampled_from([*anyone, None]), 5
            ),
            label="author",
        )
        self.mark_foreign(org, author)
        new = NewContent(
            title=title,
            body=body,
            slug=slug,
            content_type=content_type,
            difficulty=difficulty,
            tags=tags,
            metadata=metadata,
            author_id=author,
        )
        scope = self.scope(data, org)
        outcome = self.core(
            f"create draft {new!r}", org, lambda c: c.content.create_draft(scope, new)
        )
        return multiple(outcome.value.id) if outcome.ok else multiple()

    @rule(
        org=orgs,
        content=contents,
        name=st.sampled_from(
            ["title", "slug", "body", "content_type", "difficulty", "tags", "metadata", "status"]
        ),
        data=st.data(),
    )
    @counted
    def update_content(self, org: UUID, content: UUID, name: str, data: st.DataObject) -> None:
        org = self.home(data, org, content)
        strategies: dict[str, st.SearchStrategy[Any]] = {
            "title": titles,
            "slug": slugs,
            "body": multiline_texts,
            "content_type": content_types,
            "difficulty": difficulties,
            "tags": tags,
            "metadata": metadata_values,
            "status": st.sampled_from(list(ContentStatus)),
        }
        value = data.draw(strategies[name], label="value")
        current = self.row(EducationalContent, content)
        expected = data.draw(
            st.sampled_from([None, None, current["version"] if current else 1, 99]), label="version"
        )
        scope = self.scope(data, org)
        self.core(
            f"update content {name}={value!r} expected_version={expected} by {scope}",
            org,
            lambda c: c.content.update(scope, content, {name: value}, expected_version=expected),
        )

    @rule(
        org=orgs,
        content=contents,
        action=st.sampled_from(
            ["publish", "publish", "archive", "get", "restore", "delete", "hard delete"]
        ),
        data=st.data(),
    )
    @counted
    def content_lifecycle(self, org: UUID, content: UUID, action: str, data: st.DataObject) -> None:
        org = self.home(data, org, content)
        scope = self.scope(data, org)
        calls: dict[str, Callable[[EduCore], Awaitable[Any]]] = {
            "publish": lambda c: c.content.publish(scope, content),
            "archive": lambda c: c.content.archive(scope, content),
            "get": lambda c: c.content.get(scope, content),
            "restore": lambda c: c.content.restore(scope, content),
            "delete": lambda c: c.content.delete(scope, content),
            "hard delete": lambda c: c.content.delete(scope, content, hard=True),
        }
        self.core(f"{action} content by {scope}", org, calls[action])

    @rule(org=orgs, data=st.data())
    @counted
    def content_by_slug(self, org: UUID, data: st.DataObject) -> None:
        known = [r["slug"] for r in self.rows[EducationalContent]]
        pool = st.sampled_from(known) if known else st.just("intro")
        slug = data.draw(
            valid_or(pool, st.sampled_from(["x" * 200, "Intro", "nope"]), 4), label="slug"
        )
        scope = self.reader(data, org)
        self.core(
            f"content by slug {slug!r} by {scope}",
            org,
            lambda c: c.content.get_by_slug(scope, slug),
        )

    @rule(
        org=orgs,
        search_tags=tags,
        content_type=st.one_of(st.none(), content_types),
        status=st.one_of(st.none(), st.sampled_from(list(ContentStatus))),
        author=st.one_of(st.none(), users),
        text=st.one_of(st.none(), texts),
        order=st.lists(
            st.sampled_from(
                ["-created_at", "title", "-title", "slug", "published_at", "-difficulty"]
            ),
            max_size=2,
        ),
        limit=st.integers(1, 4),
        data=st.data(),
    )
    @counted
    def search_content(
        self,
        org: UUID,
        search_tags: list[str],
        content_type: Any,
        status: Any,
        author: UUID | None,
        text: str | None,
        order: list[str],
        limit: int,
        data: st.DataObject,
    ) -> None:
        search = ContentSearch(
            tags=tuple(search_tags),
            content_type=content_type,
            status=status,
            author_id=author,
            text=text,
            order_by=tuple(order) or ("-created_at",),
            limit=limit,
        )
        scope = self.reader(data, org)
        outcome = self.core(
            f"search {search!r} by {scope}", org, lambda c: c.content.search(scope, search)
        )
        for _ in range(3):
            if not outcome.ok or outcome.value.next_cursor is None:
                break
            search = attrs.evolve(search, cursor=outcome.value.next_cursor)
            outcome = self.core(
                f"search next page {search!r}", org, lambda c, s=search: c.content.search(scope, s)
            )
        self.core(
            f"find by tags {search_tags!r}",
            org,
            lambda c: c.content.find_by_tags(scope, search_tags, skip=1, limit=limit),
        )

    # ------------------------------------------------------------------ queries

    def pages(
        self, what: str, org: UUID | None, fn: Callable[[Side, Query], Awaitable[Any]], query: Query
    ) -> None:
        """Run a find, then follow `next_cursor` through keyset pages."""
        outcome = self.call(f"{what} {query!r}", org, lambda side: fn(side, query))
        for _ in range(4):
            if not outcome.ok or query.limit is None or query.skip:
                return
            cursor = outcome.value.next_cursor
            if cursor is None:
                return
            query = query.after(cursor, query.limit or 1)
            outcome = self.call(
                f"{what} next page {query!r}", org, lambda side, q=query: fn(side, q)
            )

    @rule(org=orgs, include_deleted=st.booleans(), data=st.data())
    @counted
    def find_users(self, org: UUID, include_deleted: bool, data: st.DataObject) -> None:
        scope = self.reader(data, org)
        for _ in range(QUERIES_PER_STEP):
            query = data.draw(queries(User, self.observed(User)), label="query")
            self.pages(
                f"find users include_deleted={include_deleted}",
                org,
                lambda side, q: side.core.users.find(scope, q, include_deleted=include_deleted),
                query,
            )
        counting = data.draw(queries(User, self.observed(User), paged=False), label="count query")
        self.core(f"count users {counting!r}", org, lambda c: c.users.count(scope, counting))

    @rule(org=orgs, data=st.data())
    @counted
    def find_content(self, org: UUID, data: st.DataObject) -> None:
        observed = self.observed(EducationalContent)
        scope = self.reader(data, org)
        for _ in range(QUERIES_PER_STEP):
            query = data.draw(queries(EducationalContent, observed), label="query")
            self.pages("find content", org, lambda side, q: side.core.content.find(scope, q), query)
        counting = data.draw(
            queries(EducationalContent, observed, paged=False), label="count query"
        )
        self.core(f"count content {counting!r}", org, lambda c: c.content.count(scope, counting))

    @rule(
        org=orgs,
        cls=st.sampled_from(
            [LoginSession, UserToken, UserProfile, User, EducationalContent, Organization]
        ),
        include_deleted=st.booleans(),
        data=st.data(),
    )
    @counted
    def find_any(self, org: UUID, cls: type, include_deleted: bool, data: st.DataObject) -> None:
        for _ in range(QUERIES_PER_STEP - 1):
            self.find_one(org, cls, include_deleted, data)

    def find_one(self, org: UUID, cls: type, include_deleted: bool, data: st.DataObject) -> None:
        query = data.draw(queries(cls, self.observed(cls)), label="query")

        async def find(side: Side, q: Query) -> Any:
            async with side.factory(tenant=org) as uow:
                return await uow.find(cls, q, include_deleted=include_deleted)

        self.pages(f"uow.find {cls.__name__} include_deleted={include_deleted}", org, find, query)

        async def count(side: Side) -> Any:
            async with side.factory(tenant=org) as uow:
                return await uow.count(cls, query, include_deleted=include_deleted)

        self.call(
            f"uow.count {cls.__name__} {query!r} include_deleted={include_deleted}", org, count
        )

    @rule(data=st.data())
    @counted
    def find_organizations(self, data: st.DataObject) -> None:
        query = data.draw(queries(Organization, self.observed(Organization)), label="query")

        async def find(side: Side, q: Query) -> Any:
            async with side.factory.unscoped() as uow:
                return await uow.find(Organization, q)

        self.pages("unscoped find organizations", None, find, query)

    @rule(
        org=orgs,
        cls=st.sampled_from([User, EducationalContent, LoginSession, UserToken, UserProfile]),
        data=st.data(),
    )
    @counted
    def count_by(self, org: UUID, cls: type, data: st.DataObject) -> None:
        fields = sorted(describe(cls))
        by = data.draw(
            st.lists(
                st.sampled_from(fields),
                min_size=0 if data.draw(st.integers(0, 30)) == 15 else 1,
                max_size=2,
            ),
            label="by",
        )
        observed = self.observed(cls)
        query = data.draw(queries(cls, observed, paged=False), label="query")
        measures = {
            f"m{i}": data.draw(queries(cls, observed, paged=False), label="measure").filter
            or F("id").is_null(False)
            for i in range(data.draw(st.integers(0, 2), label="measures"))
        }

        async def count_by(side: Side) -> Any:
            async with side.factory(tenant=org) as uow:
                return await uow.count_by(cls, by, query, measures=measures)

        self.call(f"count_by {cls.__name__} by={by} {query!r} measures={measures!r}", org, count_by)


async def _rename_as(core: EduCore, tenant: UUID, target: UUID, name: str) -> Any:
    """`OrganizationService.rename` of `target` through a unit of work of `tenant`."""
    async with core.deps.uow(tenant=tenant) as uow:
        org = await uow.require(Organization, target)
        org.rename(name)
        await uow.commit()
        return org
