"""Row-level security: the database itself keeps tenants apart, even for raw SQL."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from edu_domain.model import User
from edu_infra.sqlalchemy import Database
from edu_infra.sqlalchemy.rls import key_material
from edu_infra.testing.harness import Harness, new_user

pytestmark = pytest.mark.postgres


async def test_raw_select_through_a_tenant_unit_of_work_sees_only_its_tenant(
    pg_harness: Harness,
) -> None:
    mine, theirs = await pg_harness.make_org(), await pg_harness.make_org()
    await pg_harness.make_user(mine)
    await pg_harness.make_user(theirs)
    await pg_harness.make_user(theirs)
    async with pg_harness.uow(mine) as uow:
        session = uow.session  # type: ignore[attr-defined]
        orgs = (await session.execute(text("SELECT DISTINCT organization_id FROM users"))).all()
        count = (await session.execute(text("SELECT count(*) FROM users"))).scalar_one()
        visible_orgs = (await session.execute(text("SELECT id FROM organizations"))).all()
    assert [row[0] for row in orgs] == [mine.id]
    assert count == 1
    assert [row[0] for row in visible_orgs] == [mine.id]


async def test_raw_insert_of_another_tenants_row_is_refused_by_the_database(
    pg_harness: Harness,
) -> None:
    mine, theirs = await pg_harness.make_org(), await pg_harness.make_org()
    async with pg_harness.uow(mine) as uow:
        session = uow.session  # type: ignore[attr-defined]
        with pytest.raises(sa_exc.DBAPIError, match="row-level security"):
            await session.execute(
                text(
                    "INSERT INTO users (organization_id, id, email, username, hashed_password,"
                    " role, status, email_verified, failed_login_count, created_at, updated_at,"
                    " version) VALUES (:org, gen_random_uuid(), 'x@example.org', 'xxx', 'h',"
                    " 'student', 'pending', false, 0, now(), now(), 1)"
                ),
                {"org": theirs.id},
            )


async def test_raw_update_cannot_reach_or_move_rows_across_tenants(pg_harness: Harness) -> None:
    mine, theirs = await pg_harness.make_org(), await pg_harness.make_org()
    me = await pg_harness.make_user(mine)
    them = await pg_harness.make_user(theirs)
    async with pg_harness.uow(mine) as uow:
        session = uow.session  # type: ignore[attr-defined]
        hidden = await session.execute(
            text("UPDATE users SET full_name = 'pwned' WHERE id = :id"), {"id": them.id}
        )
        assert hidden.rowcount == 0
        with pytest.raises(sa_exc.DBAPIError, match="row-level security"):
            await session.execute(
                text("UPDATE users SET organization_id = :theirs WHERE id = :id"),
                {"theirs": theirs.id, "id": me.id},
            )
    async with pg_harness.uow(theirs) as uow:
        assert (await uow.require(User, them.id)).full_name is None


async def test_the_unscoped_unit_of_work_sees_every_tenant(pg_harness: Harness) -> None:
    first, second = await pg_harness.make_org(), await pg_harness.make_org()
    await pg_harness.make_user(first)
    await pg_harness.make_user(second)
    async with pg_harness.factory.unscoped() as uow:
        assert await uow.count(User) == 2
        session = uow.session  # type: ignore[attr-defined]
        assert (await session.execute(text("SELECT count(*) FROM users"))).scalar_one() == 2


async def test_a_connection_without_a_tenant_sees_nothing(
    pg_harness: Harness, pg_db: Database
) -> None:
    org = await pg_harness.make_org()
    await pg_harness.make_user(org)
    async with pg_db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM users"))).scalar_one() == 0
        assert (await conn.execute(text("SELECT count(*) FROM organizations"))).scalar_one() == 0


async def test_the_tenant_setting_does_not_leak_through_the_pool(pg_harness: Harness) -> None:
    org = await pg_harness.make_org()
    async with pg_harness.uow(org) as uow:
        await uow.add(new_user(org))
        await uow.commit()
    database: Database = pg_harness.factory.database  # type: ignore[attr-defined]
    async with database.engine.connect() as conn:
        setting = await conn.execute(text("SELECT current_setting('app.tenant_id', true)"))
        assert setting.scalar_one() in (None, "")


async def test_the_application_role_is_neither_superuser_nor_owner(pg_db: Database) -> None:
    async with pg_db.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            )
        ).one()
        owned = await conn.execute(
            text("SELECT count(*) FROM pg_tables WHERE tableowner = current_user")
        )
    assert tuple(row) == (False, False)
    assert owned.scalar_one() == 0


async def test_unit_of_work_filters_bind_the_tenant_instead_of_caching_it(
    pg_harness: Harness,
) -> None:
    first, second = await pg_harness.make_org(), await pg_harness.make_org()
    await pg_harness.make_user(first)
    await pg_harness.make_user(second)
    await pg_harness.make_user(second)
    counts = []
    for org in (first, second, first):
        async with pg_harness.uow(org) as uow:
            counts.append((await uow.count(User), len(await uow.find(User))))
    assert counts == [(1, 1), (2, 2), (1, 1)]


@pytest.mark.parametrize(
    "key", ["k" * 32, "ключ-" * 20, "x" * 64, "y" * 65], ids=["short", "utf8", "block", "long"]
)
async def test_postgresql_computes_the_same_hmac_as_python(pg_db: Database, key: str) -> None:
    """The policies' HMAC is two sha256() calls over the stored padded keys (RFC 2104)."""
    ipad, opad = key_material(key.encode())
    message = "tenant:0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b:12345"
    async with pg_db.engine.connect() as conn:
        computed = await conn.execute(
            text("SELECT sha256(:opad || sha256(:ipad || convert_to(:message, 'UTF8')))"),
            {"ipad": ipad, "opad": opad, "message": message},
        )
    expected = hmac.new(key.encode(), message.encode(), hashlib.sha256).digest()
    assert computed.scalar_one() == expected
