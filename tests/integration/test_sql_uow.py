"""SQL unit-of-work behaviour the contract suite cannot see: SQLAlchemy's own state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import inspect

from edu_domain.errors import AlreadyExists, DomainError, ValidationError
from edu_domain.model import User
from edu_infra.testing.harness import Harness, new_user


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def harness(request: pytest.FixtureRequest) -> Harness:
    name = "sqlite_harness" if request.param == "sqlite" else "pg_harness"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


async def test_entities_keep_their_values_after_a_failed_flush(harness: Harness) -> None:
    org = await harness.make_org()
    taken = await harness.make_user(org)
    mine = await harness.make_user(org)
    async with harness.uow(org) as uow:
        user = await uow.require(User, mine.id)
        user.rename("Renamed")
        user.email = taken.email
        with pytest.raises(AlreadyExists):
            await uow.flush()
        state: Any = inspect(user)
        assert state.detached
        assert not state.expired_attributes
        assert (user.full_name, user.email, user.version) == ("Renamed", taken.email, 1)


async def test_objects_stay_readable_after_commit_rollback_and_close(harness: Harness) -> None:
    org = await harness.make_org()
    async with harness.uow(org) as uow:
        committed = new_user(org)
        await uow.add(committed)
        await uow.commit()
        rolled_back = new_user(org)
        await uow.add(rolled_back)
        await uow.rollback()
    for entity in (committed, rolled_back):
        state: Any = inspect(entity)
        assert not state.expired_attributes
        assert entity.email.endswith("@example.org")


async def test_no_driver_exception_reaches_the_caller(harness: Harness) -> None:
    org = await harness.make_org()
    user = await harness.make_user(org)
    async with harness.uow(org) as uow:
        attempts: list[Callable[[], Awaitable[None]]] = [
            lambda: uow.add(new_user(org, email=user.email)),
            lambda: uow.add_all([new_user(org, username=user.username)]),
            lambda: uow.add(new_user(org, full_name="x")),  # fine: proves the uow recovered
        ]
        outcomes: list[type[BaseException] | None] = []
        for attempt in attempts:
            try:
                await attempt()
                outcomes.append(None)
            except sa_exc.SQLAlchemyError as error:  # pragma: no cover - the failure we guard
                pytest.fail(f"SQLAlchemy error escaped: {error!r}")
            except DomainError as error:
                outcomes.append(type(error))
    assert outcomes == [AlreadyExists, AlreadyExists, None]


async def test_add_all_of_something_that_is_not_a_collection_is_a_validation_error(
    harness: Harness,
) -> None:
    org = await harness.make_org()
    async with harness.uow(org) as uow:
        with pytest.raises(ValidationError):
            await uow.add_all(new_user(org))  # type: ignore[arg-type]


async def test_a_unit_of_work_uses_one_session_without_expiry_on_commit(harness: Harness) -> None:
    org = await harness.make_org()
    async with harness.uow(org) as uow:
        session = uow.session  # type: ignore[attr-defined]
        assert session.sync_session.expire_on_commit is False
        user = new_user(org)
        await uow.add(user)
        await uow.commit()
        assert uow.session is session  # type: ignore[attr-defined]
        assert not inspect(user).expired_attributes


async def test_a_row_breaking_two_unique_keys_reports_the_first_declared(
    harness: Harness,
) -> None:
    org = await harness.make_org()
    taken = await harness.make_user(org)
    async with harness.uow(org) as uow:
        with pytest.raises(AlreadyExists) as caught:
            await uow.add(new_user(org, email=taken.email, username=taken.username))
    assert caught.value.field == "email"


async def test_a_batch_reports_the_first_declared_key_any_of_its_rows_breaks(
    harness: Harness,
) -> None:
    org = await harness.make_org()
    taken = await harness.make_user(org)
    batch = [
        new_user(org),
        new_user(org, username=taken.username),
        new_user(org, email=taken.email),
    ]
    async with harness.uow(org) as uow:
        with pytest.raises(AlreadyExists) as caught:
            await uow.add_all(batch)
        assert caught.value.field == "email"
        twins = [
            new_user(org, username="twin", email="one@example.org"),
            new_user(org, username="twin", email="two@example.org"),
        ]
        with pytest.raises(AlreadyExists) as caught:
            await uow.add_all(twins)
        assert caught.value.field == "username"
