"""No secret (password, password hash, token, token hash) reaches a log line or an error."""

from __future__ import annotations

import logging

import pytest

from edu_domain.errors import AlreadyExists
from edu_infra.testing.harness import new_user
from tests.sql_harness import sqlite_harness

_LOGGERS = ("edu_infra", "edu_domain", "sqlalchemy", "examples")


async def test_a_failed_insert_never_formats_its_bound_values_into_logs_or_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Regression: the adapter logs driver errors at DEBUG with their traceback, and
    SQLAlchemy formats every bound value (the password hash included) into them."""
    secret_hash = "$argon2id$v=19$m=8,t=1,p=1$c2VjcmV0LXNhbHQ$SECRET-HASH-VALUE"
    for name in _LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    async with sqlite_harness() as harness:
        org = await harness.make_org()
        await harness.make_user(org, username="taken")
        async with harness.uow(org) as uow:
            with pytest.raises(AlreadyExists) as caught:
                await uow.add(new_user(org, username="taken", hashed_password=secret_hash))
    assert any(r.exc_info for r in caplog.records), "the driver error was logged"
    assert "SECRET-HASH-VALUE" not in caplog.text
    assert "SECRET-HASH-VALUE" not in repr(caught.value) + str(caught.value)


@pytest.mark.postgres
async def test_the_rls_key_never_reaches_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    """Neither EDU_RLS_KEY nor the key material it becomes (enough to forge a tenant) is
    logged by the migration that stores it or by the units of work that sign with it."""
    from edu_infra.sqlalchemy.migrate import upgrade_async
    from edu_infra.sqlalchemy.rls import key_material
    from tests.reliability.conftest import postgres_stack, reliability_database
    from tests.sql_harness import APP_ROLE, RLS_KEY

    for name in _LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    database = await reliability_database()
    await upgrade_async(database.owner_url, app_role=APP_ROLE, rls_key=RLS_KEY[::-1])
    await upgrade_async(database.owner_url, app_role=APP_ROLE, rls_key=RLS_KEY)  # back
    async with postgres_stack() as stack:
        org = await stack.org()
        async with stack.factory(tenant=org.id) as uow:
            await uow.add(new_user(org))
            await uow.commit()
    assert "edu_rls_key" in caplog.text, "the key's statements were logged"
    for key in (RLS_KEY, RLS_KEY[::-1]):
        ipad, opad = key_material(key.encode())
        for secret in (key, ipad.hex(), opad.hex(), repr(ipad)[2:40], repr(opad)[2:40]):
            assert secret not in caplog.text
