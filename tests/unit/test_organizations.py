"""Organizations: create, get, list, rename."""

from __future__ import annotations

import pytest

from edu_domain import AlreadyExists, NotFound, ValidationError
from edu_domain.model import OrganizationStatus, uuid7
from tests.unit.conftest import World


async def test_create_derives_slug_and_is_active(world: World) -> None:
    org = await world.core.organizations.create("Lakeside High School")
    assert org.slug == "lakeside-high-school" and org.status is OrganizationStatus.ACTIVE
    assert (await world.core.organizations.get(org.id)).name == "Lakeside High School"
    assert (await world.core.organizations.get_by_slug("lakeside-high-school")).id == org.id


async def test_slugs_are_unique(world: World) -> None:
    with pytest.raises(AlreadyExists) as error:
        await world.core.organizations.create("Other", slug=world.org.slug)
    assert error.value.field == "slug"


async def test_bad_names_and_unknown_ids(world: World) -> None:
    for name, slug in (("", None), ("x" * 201, None), ("Fine", "Bad Slug"), ("a\x00b", "ok")):
        with pytest.raises(ValidationError):
            await world.core.organizations.create(name, slug)
    with pytest.raises(NotFound):
        await world.core.organizations.get(uuid7())
    with pytest.raises(NotFound):
        await world.core.organizations.get_by_slug("nope")


async def test_list_is_ordered_by_name(world: World) -> None:
    await world.core.organizations.create("Zeta Academy")
    await world.core.organizations.create("Alpha College")
    names = [o.name for o in await world.core.organizations.list()]
    assert names == ["Alpha College", "Springfield Elementary", "Zeta Academy"]


async def test_rename_within_its_own_tenant(world: World) -> None:
    renamed = await world.core.organizations.rename(world.scope, "Springfield Primary")
    assert renamed.name == "Springfield Primary"
    other = await world.new_org()
    async with world.core.deps.uow(tenant=world.org.id) as uow:
        assert await uow.get(type(other), other.id) is None


async def test_bootstrap_creates_org_and_active_verified_admin_atomically(world: World) -> None:
    from edu_domain.model import UserRole, UserStatus
    from edu_domain.services import NewUser, Scope

    org, account = await world.core.organizations.bootstrap(
        "Hill Valley High",
        NewUser(email="boss@hv.example", username="boss", password="long enough 1"),
    )
    assert account.user.role is UserRole.ADMIN
    assert account.user.status is UserStatus.ACTIVE
    assert account.user.email_verified
    await world.core.auth.authenticate(Scope(org.id), "boss", "long enough 1")
    before = world.state()
    with pytest.raises(ValidationError):
        await world.core.organizations.bootstrap(
            "Broken School",
            NewUser(email="not-an-email", username="boss", password="long enough 1"),
        )
    with pytest.raises(AlreadyExists):
        await world.core.organizations.bootstrap(
            "Dup",
            NewUser(email="x@hv.example", username="xx1", password="long enough 1"),
            slug=org.slug,
        )
    assert world.state() == before
