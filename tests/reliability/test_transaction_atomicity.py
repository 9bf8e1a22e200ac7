"""A transaction of random use cases with one injected failure leaves nothing behind.

Hypothesis draws a sequence of use cases (registrations, drafts, publishing, renames,
password resets, deletes) and a failure at a random point: an exception of the block
itself, a use case that fails (duplicate email, publishing an empty draft, a missing
user), or such a failure caught by the caller, who carries on. Whatever the mix, every
table is as before, no mail went out and no event was published. Without a failure the
same sequence commits at once, and its mails go out only after the block.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from uuid import UUID

import pytest
from attrs import define, field
from hypothesis import given, settings
from hypothesis import strategies as st

from edu_domain import DomainError
from edu_domain.model import UserRole
from edu_domain.services import NewContent, NewUser, Scope, Transaction
from tests.reliability.conftest import (
    Stack,
    container_stack,
    memory_stack,
    postgres_stack,
    sqlite_stack,
)

PASSWORD = "correct horse battery"
STEPS = ("register", "draft", "publish", "rename", "reset", "delete_content")
FAILURES = ("raise", "duplicate_email", "publish_empty", "missing_user", "caught")
_serial = itertools.count(1)


@define
class Plan:
    steps: list[str]
    failure: str | None
    at: int


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    steps = draw(st.lists(st.sampled_from(STEPS), max_size=6))
    failure = draw(st.one_of(st.none(), st.sampled_from(FAILURES)))
    return Plan(steps, failure, draw(st.integers(min_value=0, max_value=len(steps))))


@define
class Run:
    tx: Transaction
    scope: Scope
    author_email: str
    drafts: list[UUID] = field(factory=list)
    mails: int = 0


async def _step(run: Run, step: str) -> None:
    tx, scope, n = run.tx, run.scope, next(_serial)
    if step == "register":
        await tx.users.register(
            scope, NewUser(email=f"u{n}@example.org", username=f"user{n}", password=PASSWORD)
        )
        run.mails += 1
    elif step == "draft":
        draft = await tx.content.create_draft(scope, NewContent(title=f"Lesson {n}", body="x"))
        run.drafts.append(draft.id)
    elif step == "publish":
        if not run.drafts:
            draft = await tx.content.create_draft(scope, NewContent(title=f"Pub {n}", body="x"))
            run.drafts.append(draft.id)
        await tx.content.publish(scope, run.drafts.pop())
    elif step == "rename":
        assert scope.actor_id is not None
        await tx.users.update(scope, scope.actor_id, {"full_name": f"Name {n}"})
    elif step == "reset":
        await tx.auth.request_password_reset(scope, run.author_email)
        run.mails += 1
    elif step == "delete_content" and run.drafts:
        assert await tx.content.delete(scope, run.drafts.pop())


async def _fail(run: Run, failure: str) -> None:
    tx, scope = run.tx, run.scope
    if failure == "raise":
        raise RuntimeError("injected")
    if failure in ("duplicate_email", "caught"):
        taken = NewUser(email=run.author_email, username=f"dup{next(_serial)}", password=PASSWORD)
        if failure == "duplicate_email":
            await tx.users.register(scope, taken)
        try:
            await tx.users.register(scope, taken)
        except DomainError:
            return  # the caller carries on: the transaction must still commit nothing
        raise AssertionError("a duplicate email was accepted")
    if failure == "publish_empty":
        draft = await tx.content.create_draft(scope, NewContent(title="Empty", body=""))
        await tx.content.publish(scope, draft.id)
    if failure == "missing_user":
        await tx.users.update(scope, UUID(int=next(_serial)), {"full_name": "Nobody"})
    raise AssertionError(f"the injected {failure} did not fail")


async def _scenario(stack: Stack, plan: Plan) -> None:
    org = await stack.org()
    author = await stack.core.users.register(
        Scope.system(org.id),
        NewUser(
            email=f"author{next(_serial)}@example.org",
            username=f"author{next(_serial)}",
            password=PASSWORD,
            role=UserRole.ADMIN,
            email_verified=True,
            status="active",
        ),
    )
    scope = Scope(org.id, author.user.id)
    before = await stack.snapshot()
    mails, events = len(stack.notifier.sent), len(stack.events.events)
    run: Run | None = None
    try:
        async with stack.core.transaction(scope) as tx:
            run = Run(tx, scope, author.user.email)
            for i, step in enumerate(plan.steps):
                if plan.failure is not None and i == plan.at:
                    await _fail(run, plan.failure)
                await _step(run, step)
                assert len(stack.notifier.sent) == mails  # nothing leaves before the commit
            if plan.failure is not None and plan.at == len(plan.steps):
                await _fail(run, plan.failure)
    except (RuntimeError, DomainError):
        assert plan.failure is not None, "a transaction without a failure failed"
        assert await stack.snapshot() == before
        assert len(stack.notifier.sent) == mails
        assert len(stack.events.events) == events
        return
    assert plan.failure is None, f"the injected {plan.failure} was committed"
    assert run is not None
    assert len(stack.notifier.sent) == mails + run.mails
    if plan.steps:
        assert len(stack.events.events) > events or not any(
            s in ("register", "publish", "reset") for s in plan.steps
        )


STACKS: dict[str, tuple[Callable[[], AbstractAsyncContextManager[Stack]], int]] = {
    "memory": (memory_stack, 30),
    "sqlite": (sqlite_stack, 15),
    "postgres": (postgres_stack, 10),
}


@pytest.mark.parametrize(
    "kind",
    [
        "memory",
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
    ],
)
def test_a_failure_anywhere_in_a_transaction_leaves_nothing(kind: str) -> None:
    make, examples = STACKS[kind]

    @settings(max_examples=examples, deadline=None)
    @given(plan=plans())
    def check(plan: Plan) -> None:
        async def go() -> None:
            async with make() as stack:
                await _scenario(stack, plan)

        asyncio.run(go())

    check()


async def test_reads_inside_bypass_the_cache_so_a_rollback_leaves_no_cached_value() -> None:
    """The production container caches `users.get`: inside a transaction it must read the
    transaction's own write, and must not cache it (the transaction may still fail)."""
    async with container_stack() as stack:
        org = await stack.org()
        scope = Scope.system(org.id)
        account = await stack.core.users.register(
            scope, NewUser(email="c@example.org", username="cached", password=PASSWORD)
        )
        assert (await stack.core.users.get(scope, account.user.id)).full_name is None  # cached

        async def rename_then_fail() -> None:
            async with stack.core.transaction(scope) as tx:
                await tx.users.update(scope, account.user.id, {"full_name": "Uncommitted"})
                assert (await tx.users.get(scope, account.user.id)).full_name == "Uncommitted"
                raise RuntimeError("roll back")

        with pytest.raises(RuntimeError):
            await rename_then_fail()
        assert (await stack.core.users.get(scope, account.user.id)).full_name is None
        async with stack.core.transaction(scope) as tx:
            await tx.users.update(scope, account.user.id, {"full_name": "Committed"})
        assert (await stack.core.users.get(scope, account.user.id)).full_name == "Committed"
