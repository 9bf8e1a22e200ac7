"""No secret (password, password hash, token, token hash) reaches a log line or an error."""

from __future__ import annotations

import logging

import pytest

from edu_domain.errors import AlreadyExists
from tests.harness import new_user
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
