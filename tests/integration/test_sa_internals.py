"""The SQLAlchemy internals the adapter uses are checked when the mappers start: a release
that moved one fails loudly, naming it, instead of misbehaving later."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.orm.state import InstanceState

from edu_domain.model import User
from edu_infra.sqlalchemy import sa_internals
from edu_infra.sqlalchemy.mapping import start_mappers


def test_this_sqlalchemy_passes_the_check() -> None:
    start_mappers()
    sa_internals.check(inspect(User))


@pytest.mark.parametrize(
    ("owner", "name"),
    [(AsyncAdapt_asyncpg_connection, "_start_transaction"), (InstanceState, "_commit_all")],
)
def test_a_moved_internal_is_named(monkeypatch: pytest.MonkeyPatch, owner: type, name: str) -> None:
    start_mappers()
    monkeypatch.delattr(owner, name)
    with pytest.raises(RuntimeError, match=name):
        sa_internals.check(inspect(User))
