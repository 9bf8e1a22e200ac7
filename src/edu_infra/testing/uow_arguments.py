"""Contract: every bad argument of the `UnitOfWork` port is one `ValidationError` naming it,
on every adapter, and changes nothing (the checks live in `edu_domain.uow_checks`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import uuid4

import pytest

from edu_domain.errors import ValidationError
from edu_domain.model import Organization, User
from edu_domain.ports import UnitOfWork
from edu_domain.query import F, Query
from edu_infra.testing.harness import Harness, new_user

Call = Callable[[UnitOfWork, User], Awaitable[Any]]


async def _get_text_id(uow: UnitOfWork, user: User) -> Any:
    return await uow.get(User, str(user.id))  # type: ignore[arg-type]


async def _get_not_a_class(uow: UnitOfWork, user: User) -> Any:
    return await uow.get("User", user.id)  # type: ignore[arg-type]


async def _get_truthy_flag(uow: UnitOfWork, user: User) -> Any:
    return await uow.get(User, user.id, include_deleted="yes")  # type: ignore[arg-type]


async def _get_lock_not_bool(uow: UnitOfWork, user: User) -> Any:
    return await uow.get(User, user.id, lock=1)  # type: ignore[arg-type]


async def _find_not_a_query(uow: UnitOfWork, user: User) -> Any:
    return await uow.find(User, "status = 'active'")  # type: ignore[arg-type]


async def _find_falsy_query(uow: UnitOfWork, user: User) -> Any:
    return await uow.find(User, 0)  # type: ignore[arg-type]


async def _find_flag(uow: UnitOfWork, user: User) -> Any:
    return await uow.find(User, Query(), include_deleted=None)  # type: ignore[arg-type]


async def _count_not_a_query(uow: UnitOfWork, user: User) -> Any:
    return await uow.count(User, {"status": "active"})  # type: ignore[arg-type]


async def _count_not_an_entity(uow: UnitOfWork, user: User) -> Any:
    return await uow.count(Query)  # type: ignore[type-var]


async def _stream_not_a_query(uow: UnitOfWork, user: User) -> Any:
    return [u async for u in uow.stream(User, "all")]  # type: ignore[arg-type]


async def _count_by_measures_list(uow: UnitOfWork, user: User) -> Any:
    measures: Any = [("admins", F("role").eq("admin"))]
    return await uow.count_by(User, ["role"], measures=measures)


async def _page_negative_skip(uow: UnitOfWork, user: User) -> Any:
    return await uow.find(User, Query().page(-1, 10))


async def _page_limit_bool(uow: UnitOfWork, user: User) -> Any:
    return await uow.find(User, Query().page(0, True))


async def _add_not_an_entity(uow: UnitOfWork, user: User) -> Any:
    return await uow.add({"id": uuid4()})  # type: ignore[arg-type]


async def _add_all_with_a_stranger(uow: UnitOfWork, user: User) -> Any:
    return await uow.add_all([new_user(user.organization_id), "intruder"])  # type: ignore[list-item]


async def _add_all_not_a_collection(uow: UnitOfWork, user: User) -> Any:
    return await uow.add_all(new_user(user.organization_id))  # type: ignore[arg-type]


async def _delete_not_an_entity(uow: UnitOfWork, user: User) -> Any:
    return await uow.delete(user.id)  # type: ignore[arg-type]


async def _delete_hard_not_bool(uow: UnitOfWork, user: User) -> Any:
    return await uow.delete(user, hard="yes")  # type: ignore[arg-type]


async def _restore_not_an_entity(uow: UnitOfWork, user: User) -> Any:
    return await uow.restore(None)  # type: ignore[arg-type]


async def _after_commit_not_callable(uow: UnitOfWork, user: User) -> Any:
    uow.after_commit(42)  # type: ignore[arg-type]


BAD_CALLS: dict[str, tuple[Call, str]] = {
    "get with a UUID's text": (_get_text_id, "id"),
    "get of a class name": (_get_not_a_class, "entity"),
    "get with include_deleted='yes'": (_get_truthy_flag, "include_deleted"),
    "get with lock=1": (_get_lock_not_bool, "lock"),
    "find with SQL text": (_find_not_a_query, "query"),
    "find with a falsy non-query": (_find_falsy_query, "query"),
    "find with include_deleted=None": (_find_flag, "include_deleted"),
    "count with a dict": (_count_not_a_query, "query"),
    "count of a non-entity class": (_count_not_an_entity, "entity"),
    "stream with text": (_stream_not_a_query, "query"),
    "count_by with measures as a list": (_count_by_measures_list, "measures"),
    "a page with a negative skip": (_page_negative_skip, "skip"),
    "a page with limit=True": (_page_limit_bool, "limit"),
    "add of a dict": (_add_not_an_entity, "entity"),
    "add_all with a string in it": (_add_all_with_a_stranger, "entity"),
    "add_all of one entity": (_add_all_not_a_collection, "entities"),
    "delete of an id": (_delete_not_an_entity, "entity"),
    "delete with hard='yes'": (_delete_hard_not_bool, "hard"),
    "restore of None": (_restore_not_an_entity, "entity"),
    "after_commit(42)": (_after_commit_not_callable, "callback"),
}


class ArgumentsContract:
    """The `UnitOfWork` contract: bad arguments. Needs a `harness` fixture."""

    @pytest.mark.parametrize("case", list(BAD_CALLS))
    async def test_a_bad_argument_is_a_validation_error_and_changes_nothing(
        self, harness: Harness, case: str
    ) -> None:
        call, field = BAD_CALLS[case]
        org = await harness.make_org()
        user = await harness.make_user(org)
        async with harness.uow(org) as uow:
            loaded = await uow.require(User, user.id)
            with pytest.raises(ValidationError) as raised:
                await call(uow, loaded)
            assert raised.value.field == field
            await uow.commit()
        async with harness.uow(org) as uow:
            assert await uow.count(User, include_deleted=True) == 1
            again = await uow.require(User, user.id)
            assert again.version == user.version
            assert not again.is_deleted
        assert harness.listener.commits == []

    @pytest.mark.parametrize(
        ("tenant", "actor", "field"),
        [
            ("org", "admin", "actor"),
            ("text", None, "tenant"),
            ("org", 7, "actor"),
        ],
    )
    async def test_a_factory_refuses_a_tenant_or_actor_that_is_not_a_uuid(
        self, harness: Harness, tenant: str, actor: object, field: str
    ) -> None:
        org = await harness.make_org()
        value: Any = org.id if tenant == "org" else str(org.id)
        with pytest.raises(ValidationError) as raised:
            harness.factory(tenant=value, actor=actor)  # type: ignore[arg-type]
        assert raised.value.field == field

    async def test_an_unscoped_unit_of_work_refuses_an_actor_that_is_not_a_uuid(
        self, harness: Harness
    ) -> None:
        with pytest.raises(ValidationError) as raised:
            harness.factory.unscoped(actor="admin")  # type: ignore[arg-type]
        assert raised.value.field == "actor"
        async with harness.factory.unscoped(actor=None) as uow:
            assert await uow.count(Organization) == 0
