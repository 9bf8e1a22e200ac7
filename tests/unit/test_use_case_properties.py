"""Properties of the use cases that hold for all inputs (hypothesis, memory adapters)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edu_domain import (
    AlreadyExists,
    ConcurrencyConflict,
    DomainError,
    InvalidToken,
    NotFound,
    PermissionDenied,
)
from edu_domain.model import User, UserRole
from edu_domain.services import NewContent, NewUser, Scope
from tests.unit.conftest import PASSWORD, World, make_world

names = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=3, max_size=8)


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


@settings(max_examples=30)
@given(local=names, domain=names, flips=st.lists(st.booleans(), min_size=1, max_size=30))
def test_email_uniqueness_ignores_case(local: str, domain: str, flips: list[bool]) -> None:
    async def scenario() -> None:
        world = await make_world()
        address = f"{local}@{domain}.org"
        await world.core.users.register(
            world.scope, NewUser(email=address, username="first", password=PASSWORD)
        )
        variant = "".join(
            c.upper() if flip else c for c, flip in zip(address, itertools.cycle(flips))
        )
        with pytest.raises(AlreadyExists):
            await world.core.users.register(
                world.scope, NewUser(email=variant, username="second", password=PASSWORD)
            )
        assert await world.core.users.count(world.scope) == 1

    run(scenario())


operations = st.lists(
    st.tuples(
        st.sampled_from(
            ["register", "update", "delete", "restore", "content", "login", "verify", "lookup"]
        ),
        st.sampled_from([0, 1]),
        st.integers(min_value=0, max_value=4),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=25)
@given(ops=operations)
def test_tenants_never_see_or_change_each_others_rows(ops: list[tuple[str, int, int]]) -> None:
    """Random use cases in two organizations, each trying the other's ids: no leak, no write."""

    async def scenario() -> None:
        world = await make_world()
        orgs = [world.org, await world.new_org()]
        ids: dict[int, list[object]] = {0: [], 1: []}
        for op, side, n in ops:
            scope = Scope.system(orgs[side].id)
            foreign = ids[1 - side]
            target = foreign[n % len(foreign)] if foreign else None
            try:
                if op == "register":
                    acc = await world.user(
                        f"u{side}x{n}x{len(ids[side])}", org=orgs[side], role=UserRole.TEACHER
                    )
                    ids[side].append(acc.user.id)
                elif op == "update" and target is not None:
                    await world.core.users.update(scope, target, {"full_name": "Intruder"})  # type: ignore[arg-type]
                elif op == "delete" and target is not None:
                    assert not await world.core.users.delete(scope, target, hard=n % 2 == 0)  # type: ignore[arg-type]
                elif op == "restore" and target is not None:
                    await world.core.users.restore(scope, target)  # type: ignore[arg-type]
                elif op == "content" and target is not None:
                    await world.core.content.create_draft(
                        Scope(orgs[side].id, target), NewContent(title="x")
                    )  # type: ignore[arg-type]
                elif op == "login":
                    await world.core.auth.authenticate(scope, f"u{1 - side}x{n}x0", PASSWORD)
                elif op == "verify":
                    mails = [m for m in world.notifier.sent if m.kind == "verify"]
                    if mails:
                        await world.core.verification.verify_email(
                            scope, mails[n % len(mails)].token
                        )
                elif op == "lookup" and target is not None:
                    await world.core.users.get(scope, target)  # type: ignore[arg-type]
            except DomainError as error:
                # a foreign actor is no member: refused before any read
                refusals = (NotFound, InvalidToken, AlreadyExists, PermissionDenied)
                assert isinstance(error, refusals) or op in ("login",)
            for s in (0, 1):
                page = await world.core.users.find(Scope.system(orgs[s].id))
                assert all(u.organization_id == orgs[s].id for u in page)
                assert {u.id for u in page} <= set(ids[s])
        for key in world.store:
            row = world.store.row(key)
            assert row is not None
            if key[0] is User:
                side = 0 if row["organization_id"] == orgs[0].id else 1
                assert row["id"] in ids[side] and row["full_name"] != "Intruder"

    run(scenario())


@settings(max_examples=25)
@given(
    steps=st.lists(
        st.sampled_from(["add_user", "rename", "delete", "content", "hard_delete"]),
        min_size=1,
        max_size=10,
    )
)
def test_rollback_leaves_the_store_unchanged(steps: list[str]) -> None:
    async def scenario() -> None:
        world = await make_world()
        alice = (await world.user("alice", role=UserRole.TEACHER)).user
        before = world.state()
        async with world.core.deps.uow(tenant=world.org.id, actor=alice.id) as uow:
            for i, step in enumerate(steps):
                user = await uow.get(User, alice.id)
                if step == "add_user":
                    await uow.add(
                        User(
                            organization_id=world.org.id,
                            email=f"n{i}@example.org",
                            username=f"new{i}",
                            hashed_password="h",
                        )
                    )
                elif step == "rename" and user is not None:
                    user.full_name = f"Name {i}"
                elif step == "delete" and user is not None:
                    await uow.delete(user)
                elif step == "content" and user is not None:
                    from edu_domain.model import EducationalContent

                    await uow.add(
                        EducationalContent(
                            organization_id=world.org.id,
                            title="t",
                            slug=f"s{i}",
                            author_id=alice.id,
                        )
                    )
                elif step == "hard_delete" and user is not None:
                    with contextlib.suppress(DomainError):
                        await uow.delete(user, hard=True)
            await uow.flush()
            await uow.rollback()
        assert world.state() == before

    run(scenario())


@settings(max_examples=20)
@given(uses=st.integers(min_value=2, max_value=5))
def test_tokens_are_single_use(uses: int) -> None:
    async def scenario() -> None:
        world = await make_world()
        await world.user("alice")
        await world.core.auth.request_password_reset(world.scope, "alice@example.org")
        await world.user("bob", verified=False)
        reset = world.notifier.last("reset").token
        verify = world.notifier.last("verify", "bob@example.org").token
        results = []
        for i in range(uses):
            try:
                await world.core.auth.reset_password(world.scope, reset, f"new password {i}")
                results.append("reset")
            except InvalidToken:
                results.append("refused")
        assert results == ["reset"] + ["refused"] * (uses - 1)
        outcomes = await asyncio.gather(
            *(world.core.verification.verify_email(world.scope, verify) for _ in range(uses)),
            return_exceptions=True,
        )
        winners = [o for o in outcomes if not isinstance(o, BaseException)]
        losers = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(winners) == 1
        assert all(isinstance(o, (InvalidToken, ConcurrencyConflict)) for o in losers)

    run(scenario())


def test_world_fixture_starts_empty_but_for_its_organization(world: World) -> None:
    assert len(world.state()) == 1
