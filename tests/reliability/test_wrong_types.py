"""Wrong types for commands and list fields are ValidationErrors, never TypeErrors or a
silent conversion (a string is not a list of characters, a list of pairs is not a dict).

Regressions found by the hostile-input fuzzer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from edu_domain.errors import ValidationError
from edu_domain.services import ContentSearch, NewContent, NewUser, Scope
from tests.reliability.conftest import memory_stack

PASSWORD = "correct horse battery"
#: the commands, untyped: these cases pass what their annotations forbid
AnyContent: Any = NewContent
AnySearch: Any = ContentSearch


def _user(**fields: Any) -> NewUser:
    return NewUser(**{"email": "x@a.org", "username": "xavier", "password": PASSWORD, **fields})


Case = Callable[[Any, Scope, Any], Awaitable[Any]]  # Any: the cases break the types

CASES: dict[str, Case] = {
    "register a str": lambda c, s, ids: c.users.register(s, "x@a.org"),
    "register None": lambda c, s, ids: c.users.register(s, None),
    "create_many a str": lambda c, s, ids: c.users.create_many(s, "abc"),
    "create_many an int": lambda c, s, ids: c.users.create_many(s, 3),
    "create_many of dicts": lambda c, s, ids: c.users.create_many(s, [{"email": "x"}]),
    "skills as a str": lambda c, s, ids: c.users.register(s, _user(skills="python")),
    "skills as a dict": lambda c, s, ids: c.users.register(s, _user(skills={"py": 1})),
    "profile skills as a str": lambda c, s, ids: c.users.update_profile(
        s, ids["admin"], {"skills": "python"}
    ),
    "bootstrap without a NewUser": lambda c, s, ids: c.organizations.bootstrap("X", None),
    "bootstrap with a numeric name": lambda c, s, ids: c.organizations.bootstrap(
        3,
        _user(),
    ),
    "create with a numeric name": lambda c, s, ids: c.organizations.create(3),
    "draft a dict": lambda c, s, ids: c.content.create_draft(s, {"title": "x"}),
    "draft with a numeric title": lambda c, s, ids: c.content.create_draft(
        s,
        AnyContent(title=3),
    ),
    "tags as a bool": lambda c, s, ids: c.content.create_draft(
        s,
        AnyContent(title="T", tags=True),
    ),
    "tags as a str": lambda c, s, ids: c.content.create_draft(s, AnyContent(title="T", tags="ab")),
    "metadata as pairs": lambda c, s, ids: c.content.create_draft(
        s,
        AnyContent(title="T", metadata=[("a", 1)]),
    ),
    "search None": lambda c, s, ids: c.content.search(s, None),
    "search tags as an int": lambda c, s, ids: c.content.search(s, AnySearch(tags=3)),
    "find_by_tags None": lambda c, s, ids: c.content.find_by_tags(s, None),
    "find_by_tags a dict": lambda c, s, ids: c.content.find_by_tags(s, {"math": 1}),
    "find_by_tags a str": lambda c, s, ids: c.content.find_by_tags(s, "math"),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_wrong_types_are_validation_errors_and_write_nothing(case: str) -> None:
    async with memory_stack() as stack:
        org, admin = await stack.core.organizations.bootstrap("School", _user())
        scope = Scope(org.id, admin.user.id)
        before = await stack.snapshot()
        with pytest.raises(ValidationError):
            await CASES[case](stack.core, scope, {"admin": admin.user.id})
        assert await stack.snapshot() == before
