"""Secret fields (password and token hashes) cannot be named by any query.

Regression: `Query.where(F("hashed_password").startswith(...))` through `users.find` let a
caller of a public use case recover a password hash one character at a time.
"""

from __future__ import annotations

import pytest

from edu_domain.errors import ValidationError
from edu_domain.model import LoginSession, User
from edu_domain.model.session import UserToken
from edu_domain.query import F, Query
from edu_domain.services import NewUser, Scope
from tests.reliability.conftest import STACKS

SECRET_FIELDS = [(User, "hashed_password"), (LoginSession, "token_hash"), (UserToken, "token_hash")]


@pytest.mark.parametrize("name", ["memory", "sqlite"])
async def test_no_query_can_filter_order_or_group_by_a_secret_field(name: str) -> None:
    async with STACKS[name]() as stack:
        org = await stack.org()
        scope = Scope.system(org.id)
        await stack.core.users.register(
            scope, NewUser(email="a@example.org", username="alice", password="long enough pw")
        )
        oracle = Query.where(F("hashed_password").startswith("fast$"))
        with pytest.raises(ValidationError, match="secret"):
            await stack.core.users.find(scope, oracle)
        with pytest.raises(ValidationError, match="secret"):
            await stack.core.users.count(scope, oracle)
        with pytest.raises(ValidationError, match="secret"):
            await stack.core.users.find(scope, Query().order_by("-hashed_password"))
        async with stack.factory(tenant=org.id) as uow:
            for cls, field in SECRET_FIELDS:
                queries = [
                    Query.where(**{field: "x"}),
                    Query.where(F(field).ne("x") | F("id").is_null()),
                    Query().order_by(field),
                ]
                for query in queries:
                    with pytest.raises(ValidationError, match="secret"):
                        await uow.find(cls, query)
                with pytest.raises(ValidationError, match="secret"):
                    await uow.count_by(cls, (field,))
                with pytest.raises(ValidationError, match="secret"):
                    await uow.count_by(cls, ("organization_id",), measures={"m": F(field).eq("x")})
