"""Wrong types for commands and list fields are ValidationErrors, never TypeErrors or a
silent conversion (a string is not a list of characters, a list of pairs is not a dict).

Regressions found by the hostile-input fuzzer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from edu_domain.errors import ValidationError
from edu_domain.services import ContentSearch, EduCore, NewContent, NewUser, Scope
from tests.reliability.conftest import memory_stack

PASSWORD = "correct horse battery"


def _user(**fields: Any) -> NewUser:
    return NewUser(**{"email": "x@a.org", "username": "xavier", "password": PASSWORD, **fields})


Case = Callable[[EduCore, Scope, Any], Awaitable[Any]]

CASES: dict[str, Case] = {
    "register a str": lambda c, s, ids: c.users.register(s, "x@a.org"),  # type: ignore[arg-type]
    "register None": lambda c, s, ids: c.users.register(s, None),  # type: ignore[arg-type]
    "create_many a str": lambda c, s, ids: c.users.create_many(s, "abc"),  # type: ignore[arg-type]
    "create_many an int": lambda c, s, ids: c.users.create_many(s, 3),  # type: ignore[arg-type]
    "create_many of dicts": lambda c, s, ids: c.users.create_many(s, [{"email": "x"}]),  # type: ignore[list-item]
    "skills as a str": lambda c, s, ids: c.users.register(s, _user(skills="python")),
    "skills as a dict": lambda c, s, ids: c.users.register(s, _user(skills={"py": 1})),  # type: ignore[arg-type]
    "profile skills as a str": lambda c, s, ids: c.users.update_profile(
        s, ids["admin"], {"skills": "python"}
    ),
    "bootstrap without a NewUser": lambda c, s, ids: c.organizations.bootstrap("X", None),  # type: ignore[arg-type]
    "bootstrap with a numeric name": lambda c, s, ids: c.organizations.bootstrap(
        3,
        _user(),  # type: ignore[arg-type]
    ),
    "create with a numeric name": lambda c, s, ids: c.organizations.create(3),  # type: ignore[arg-type]
    "draft a dict": lambda c, s, ids: c.content.create_draft(s, {"title": "x"}),  # type: ignore[arg-type]
    "draft with a numeric title": lambda c, s, ids: c.content.create_draft(
        s,
        NewContent(title=3),  # type: ignore[arg-type]
    ),
    "tags as a bool": lambda c, s, ids: c.content.create_draft(
        s,
        NewContent(title="T", tags=True),  # type: ignore[arg-type]
    ),
    "tags as a str": lambda c, s, ids: c.content.create_draft(s, NewContent(title="T", tags="ab")),
    "metadata as pairs": lambda c, s, ids: c.content.create_draft(
        s,
        NewContent(title="T", metadata=[("a", 1)]),  # type: ignore[arg-type]
    ),
    "search None": lambda c, s, ids: c.content.search(s, None),  # type: ignore[arg-type]
    "search tags as an int": lambda c, s, ids: c.content.search(s, ContentSearch(tags=3)),  # type: ignore[arg-type]
    "find_by_tags None": lambda c, s, ids: c.content.find_by_tags(s, None),  # type: ignore[arg-type]
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
