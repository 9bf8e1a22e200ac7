"""Property, on every adapter: `import_rows` of plain rows and `add_all` of the entities built
from the same rows leave the same visible users, or fail alike; and a batch holding one
invalid row changes nothing at all."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edu_domain.errors import DomainError, ValidationError
from edu_domain.model import Organization, User, UserRole, UserStatus
from edu_domain.query import Query
from edu_infra.testing.harness import Harness
from tests.contract.conftest import ADAPTERS, _open

_NAMES = st.sampled_from(["ann", "bob", "cid", "dee", "eve", "fay", "gus"])
_VALID = st.fixed_dictionaries(
    {"username": _NAMES},
    optional={
        "full_name": st.sampled_from(["Ann A", "Ümit Ö", "李雷"]),
        "role": st.sampled_from([*UserRole, "teacher"]),
        "status": st.sampled_from(list(UserStatus)),
        "email_verified": st.booleans(),
        "failed_login_count": st.integers(0, 5),
    },
).map(lambda row: {"email": f"{row['username']}@Example.org", "hashed_password": "h$1", **row})
#: one field value the entity's own rules refuse
_BAD = st.sampled_from(
    [
        ("email", "no-at-sign"),
        ("username", "x"),
        ("role", "emperor"),
        ("full_name", "   "),
        ("failed_login_count", -1),
        ("email_verified", "yes"),
        ("hashed_password", ""),
    ]
)
_SHOWN = ("username", "email", "full_name", "role", "status", "email_verified", "version")


async def _visible(harness: Harness, org: Organization) -> list[tuple[Any, ...]]:
    async with harness.uow(org) as uow:
        users = (await uow.find(User, Query().order_by("username"))).items
        return [
            (*(getattr(u, f) for f in _SHOWN), u.failed_login_count, u.created_at) for u in users
        ]


async def _outcome(harness: Harness, rows: list[dict[str, Any]], *, by_import: bool) -> Any:
    """(error type and field, or None; the organization's visible users afterwards)."""
    org = await harness.make_org()
    error: tuple[type[DomainError], str | None] | None = None
    try:
        async with harness.uow(org) as uow:
            if by_import:
                await uow.import_rows(User, rows)
            else:
                await uow.add_all([User(organization_id=org.id, **row) for row in rows])
            await uow.commit()
    except DomainError as failure:
        field = failure.field if isinstance(failure, ValidationError) else None
        error = (type(failure), field)
    return error, await _visible(harness, org)


def _property(adapter: str, request: pytest.FixtureRequest, examples: int) -> None:
    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(rows=st.lists(_VALID, max_size=6), bad=st.none() | st.tuples(st.integers(0), _BAD))
    def check(rows: list[dict[str, Any]], bad: tuple[int, tuple[str, Any]] | None) -> None:
        if bad is not None:
            at, (field, value) = bad
            rows = rows or [{}]
            rows[at % len(rows)] = {**(rows[at % len(rows)] or _fallback()), field: value}

        async def go() -> None:
            async with _open(adapter, request) as harness:
                added = await _outcome(harness, rows, by_import=False)
                imported = await _outcome(harness, rows, by_import=True)
            assert imported == added
            if bad is not None:  # one invalid row: nothing was written
                assert imported[0] is not None and imported[1] == []

        asyncio.run(go())

    check()


def _fallback() -> dict[str, Any]:
    return {"email": "zed@example.org", "username": "zed", "hashed_password": "h$1"}


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_import_and_add_all_of_the_same_rows_agree(
    adapter: str, request: pytest.FixtureRequest
) -> None:
    _property(adapter, request, examples=25 if adapter == "memory" else 12)
