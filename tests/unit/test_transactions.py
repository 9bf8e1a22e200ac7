"""`core.transaction(scope)`: several use cases, one unit of work, one commit."""

from __future__ import annotations

import pytest

from edu_domain import AlreadyExists, InvalidState, NotFound, TenantViolation, ValidationError
from edu_domain.model import ContentPublished, ContentStatus, EducationalContent, UserRole
from edu_domain.services import NewContent, NewUser, Scope
from tests.unit.conftest import PASSWORD, World


async def _author(world: World) -> Scope:
    """An administrator acting: they may register, edit and publish (`edu_domain.policy`)."""
    account = await world.user("teacher", role=UserRole.ADMIN)
    return Scope(world.org.id, account.user.id)


async def test_draft_and_publish_commit_together_and_events_follow_the_commit(
    world: World,
) -> None:
    scope = await _author(world)
    world.events.events.clear()
    async with world.core.transaction(scope) as tx:
        draft = await tx.content.create_draft(scope, NewContent(title="Fractions", body="1/2"))
        await tx.content.publish(scope, draft.id)
        assert world.events.of_type(ContentPublished) == []  # nothing before the commit
        assert await world.core.content.count(scope) == 0  # others do not see it yet
    assert [e.content_id for e in world.events.of_type(ContentPublished)] == [draft.id]  # type: ignore[attr-defined]
    stored = await world.core.content.get(scope, draft.id)
    assert stored.status is ContentStatus.PUBLISHED


async def test_a_failing_publish_leaves_no_draft_behind(world: World) -> None:
    scope = await _author(world)
    before = world.state()

    async def run() -> None:
        async with world.core.transaction(scope) as tx:
            draft = await tx.content.create_draft(scope, NewContent(title="Empty", body=""))
            await tx.content.publish(scope, draft.id)  # an empty body may not be published

    with pytest.raises(ValidationError):
        await run()
    assert world.state() == before


async def test_an_error_of_the_block_itself_leaves_nothing(world: World) -> None:
    scope = await _author(world)
    before, mails = world.state(), len(world.notifier.sent)

    async def run() -> None:
        async with world.core.transaction(scope) as tx:
            await tx.users.register(
                scope, NewUser(email="new@example.org", username="new", password=PASSWORD)
            )
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await run()
    assert world.state() == before
    assert len(world.notifier.sent) == mails  # the verification mail never went out


async def test_a_caught_failure_still_dooms_the_transaction(world: World) -> None:
    scope = await _author(world)
    before = world.state()
    taken = NewUser(email="teacher@example.org", username="teacher2", password=PASSWORD)

    async def run() -> None:
        async with world.core.transaction(scope) as tx:
            await tx.content.create_draft(scope, NewContent(title="Kept?", body="x"))
            with pytest.raises(AlreadyExists):
                await tx.users.register(scope, taken)

    with pytest.raises(InvalidState, match="nothing was committed"):
        await run()
    assert world.state() == before


async def test_later_use_cases_of_a_failed_transaction_raise_the_first_failure(
    world: World,
) -> None:
    scope = await _author(world)
    missing = world.core.deps.ids.new_id()

    async def run() -> None:
        async with world.core.transaction(scope) as tx:
            with pytest.raises(NotFound):
                await tx.users.update(scope, missing, {"full_name": "Nobody"})
            await tx.content.create_draft(scope, NewContent(title="After", body="x"))

    with pytest.raises(NotFound):
        await run()


async def test_use_cases_read_their_own_writes_inside_the_transaction(world: World) -> None:
    scope = await _author(world)
    async with world.core.transaction(scope) as tx:
        account = await tx.users.register(
            scope, NewUser(email="bob@example.org", username="bob", password=PASSWORD)
        )
        await tx.users.update(scope, account.user.id, {"full_name": "Bob B"})
        assert (await tx.users.get(scope, account.user.id)).full_name == "Bob B"
        assert await tx.uow.get(EducationalContent, account.user.id) is None
    assert (await world.core.users.get(scope, account.user.id)).full_name == "Bob B"


async def test_after_commit_callbacks_run_once_after_the_commit_and_never_on_failure(
    world: World,
) -> None:
    scope = await _author(world)
    ran: list[str] = []

    async def note() -> None:
        ran.append("ran")

    async with world.core.transaction(scope) as tx:
        tx.after_commit(note)
        await tx.content.create_draft(scope, NewContent(title="One", body="x"))
        assert ran == []
    assert ran == ["ran"]

    async def fail() -> None:
        async with world.core.transaction(scope) as tx:
            tx.after_commit(note)
            raise RuntimeError("no commit")

    with pytest.raises(RuntimeError):
        await fail()
    assert ran == ["ran"]


async def test_a_transaction_works_for_its_own_organization_only(world: World) -> None:
    scope = await _author(world)
    other = await world.new_org()
    async with world.core.transaction(scope) as tx:
        with pytest.raises(TenantViolation):
            await tx.users.count(Scope(other.id))
        with pytest.raises(InvalidState):
            await tx.organizations.create("Not here")
        with pytest.raises(InvalidState):
            await world.core.transaction(scope).uow.count(EducationalContent)


async def test_single_use_cases_are_unchanged_outside_a_transaction(world: World) -> None:
    scope = await _author(world)
    draft = await world.core.content.create_draft(scope, NewContent(title="Solo", body="x"))
    await world.core.content.publish(scope, draft.id)
    assert (await world.core.content.get(scope, draft.id)).status is ContentStatus.PUBLISHED


async def test_the_transactions_own_unit_of_work_writes_with_the_use_cases(world: World) -> None:
    scope = await _author(world)
    assert scope.actor_id is not None
    async with world.core.transaction(scope) as tx:
        draft = await tx.content.create_draft(scope, NewContent(title="Own", body="x"))
        found = await tx.uow.require(EducationalContent, draft.id)
        await tx.uow.delete(found)
        assert await tx.uow.count(EducationalContent) == 0
        await tx.uow.restore(found)
        assert [c.id async for c in tx.uow.stream(EducationalContent)] == [draft.id]
        groups = await tx.uow.count_by(EducationalContent, ["status"])
        assert [(g.key, g.count) for g in groups] == [((ContentStatus.DRAFT,), 1)]
        tally = await tx.uow.tally(EducationalContent, ["status"])
        assert tally.groups == tuple(groups)
        await tx.uow.add_all([])
    assert (await world.core.content.get(scope, draft.id)).is_deleted is False


async def test_a_rollback_inside_dooms_the_transaction(world: World) -> None:
    scope = await _author(world)
    before = world.state()

    async def run() -> None:
        async with world.core.transaction(scope) as tx:
            await tx.content.create_draft(scope, NewContent(title="Gone", body="x"))
            await tx.uow.rollback()

    with pytest.raises(InvalidState, match="nothing was committed"):
        await run()
    assert world.state() == before
