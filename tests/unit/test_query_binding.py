"""Binding a Query to an entity: everything that is not a valid query is a ValidationError."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest

from edu_domain.errors import ValidationError
from edu_domain.model import ContentStatus, EducationalContent, User, UserRole
from edu_domain.query import (
    MAX_IN_VALUES,
    MAX_LIMIT,
    MAX_TEXT_VALUE,
    And,
    Condition,
    F,
    Op,
    Or,
    Order,
    Query,
    bind,
    encode_cursor,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


# ---------------------------------------------------------------- what binding does


def test_bind_makes_the_ordering_total_by_appending_id() -> None:
    bound = bind(User, Query().order_by("-created_at"))
    assert bound.ordering == (Order("created_at", True), Order("id"))


def test_bind_keeps_an_explicit_id_order_and_drops_repeated_fields() -> None:
    bound = bind(User, Query().order_by("-id", "email", "+email"))
    assert bound.ordering == (Order("id", True), Order("email"))


def test_bind_turns_equality_with_none_into_null_checks() -> None:
    bound = bind(User, Query.where(F("full_name").eq(None) & F("locked_until").ne(None)))
    assert bound.filter == And(
        (Condition("full_name", Op.IS_NULL, True), Condition("locked_until", Op.IS_NULL, False))
    )


def test_bind_coerces_enum_values_and_uuid_strings() -> None:
    author = uuid4()
    bound = bind(
        EducationalContent,
        Query.where(status="published", author_id=str(author)),
    )
    assert bound.filter == And(
        (
            Condition("status", Op.EQ, ContentStatus.PUBLISHED),
            Condition("author_id", Op.EQ, author),
        )
    )


def test_bind_deduplicates_in_values_in_order() -> None:
    bound = bind(User, Query.where(F("role").in_(["admin", UserRole.ADMIN, "student"])))
    assert bound.filter == Condition("role", Op.IN, (UserRole.ADMIN, UserRole.STUDENT))


def test_an_absent_query_binds_to_everything_in_id_order() -> None:
    bound = bind(User, None)
    assert (bound.filter, bound.ordering, bound.skip, bound.limit, bound.after) == (
        None,
        (Order("id"),),
        0,
        None,
        None,
    )


# ---------------------------------------------------------------- what binding refuses


@pytest.mark.parametrize(
    "query",
    [
        Query.where(no_such_field=1),
        Query.where(F("organization").eq(uuid4())),
        Query().order_by("no_such_field"),
        Query().order_by("tags"),
        Query().order_by("metadata"),
        Query(ordering=(Order("-"),)),
    ],
    ids=["filter", "filter-typo", "order", "order-tags", "order-json", "order-dash"],
)
def test_unknown_or_unorderable_fields_are_refused(query: Query) -> None:
    with pytest.raises(ValidationError):
        bind(EducationalContent, query)


def test_an_empty_order_key_is_refused_at_build_time() -> None:
    with pytest.raises(ValidationError):
        Query().order_by("")


@pytest.mark.parametrize(
    "flt",
    [
        F("failed_login_count").startswith("1"),
        F("role").lt("admin"),
        F("email_verified").gt(False),
        F("email").contains_all(["a"]),
        F("id").icontains("a"),
        F("email_verified").in_([True]),
    ],
)
def test_operators_that_do_not_suit_the_field_are_refused(flt: Any) -> None:
    with pytest.raises(ValidationError):
        bind(User, Query.where(flt))


def test_operators_on_tags_and_json_fields_are_refused() -> None:
    for flt in (F("tags").eq("python"), F("metadata").eq({"a": 1}), F("tags").is_null()):
        with pytest.raises(ValidationError):
            bind(EducationalContent, Query.where(flt))


@pytest.mark.parametrize(
    "flt",
    [
        F("failed_login_count").eq("3"),
        F("failed_login_count").eq(True),
        F("failed_login_count").eq(3.0),
        F("failed_login_count").gt(2**63),
        F("email_verified").eq(1),
        F("email").eq(42),
        F("email").eq("a\x00b"),
        F("email").eq("\ud800"),
        F("email").startswith("x" * (MAX_TEXT_VALUE + 1)),
        F("last_login_at").gt(datetime(2026, 1, 1)),
        F("last_login_at").gt("2026-01-01T00:00:00+00:00"),
        F("id").eq("not-a-uuid"),
        F("id").eq(42),
        F("role").eq("emperor"),
        F("role").in_("admin"),
        F("role").in_(["admin"] * (MAX_IN_VALUES + 1)),
        F("role").in_(42),  # type: ignore[arg-type]
        F("full_name").is_null("yes"),  # type: ignore[arg-type]
        F("full_name").lt(None),
        F("full_name").in_(["a", None]),
    ],
)
def test_values_of_the_wrong_type_are_refused(flt: Any) -> None:
    with pytest.raises(ValidationError):
        bind(User, Query.where(flt))


@pytest.mark.parametrize(
    "flt",
    [
        F("tags").contains_all([]),
        F("tags").contains_all("python"),
        F("tags").contains_all([1]),  # type: ignore[list-item]
    ],
)
def test_bad_contains_all_values_are_refused(flt: Any) -> None:
    with pytest.raises(ValidationError):
        bind(EducationalContent, Query.where(flt))


@pytest.mark.parametrize("flt", [And(()), Or(()), "email = 'x'", 42, Order("email")])
def test_things_that_are_not_filters_are_refused(flt: Any) -> None:
    with pytest.raises(ValidationError):
        bind(User, Query(filter=flt))


def test_a_query_that_is_not_a_query_is_refused() -> None:
    with pytest.raises(ValidationError):
        bind(User, "SELECT * FROM users")  # type: ignore[arg-type]


def test_an_ordering_that_is_not_order_keys_is_refused() -> None:
    with pytest.raises(ValidationError):
        bind(User, Query(ordering=("email",)))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("skip", "limit"),
    [(-1, 10), (True, 10), (1.0, 10), (0, 0), (0, -5), (0, MAX_LIMIT + 1), (0, True), (0, "9")],
)
def test_bad_pages_are_refused(skip: Any, limit: Any) -> None:
    with pytest.raises(ValidationError):
        bind(User, Query(skip=skip, limit=limit))


def test_the_largest_page_is_accepted() -> None:
    assert bind(User, Query().page(0, MAX_LIMIT)).limit == MAX_LIMIT


# ---------------------------------------------------------------- cursors


def _cursor(payload: Any) -> str:
    raw = json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


ORDER = Query().order_by("-last_login_at")


def _valid() -> str:
    return encode_cursor(User, bind(User, ORDER).ordering, [NOW, uuid4()])


def test_a_cursor_round_trips_its_values() -> None:
    last = UUID(int=7)
    cursor = encode_cursor(User, bind(User, ORDER).ordering, [NOW, last])
    assert bind(User, ORDER.after(cursor, 5)).after == (NOW, last)


def test_a_cursor_keeps_nulls_of_nullable_fields() -> None:
    cursor = encode_cursor(User, bind(User, ORDER).ordering, [None, UUID(int=1)])
    assert bind(User, ORDER.after(cursor, 5)).after == (None, UUID(int=1))


#: a fixed id: parameter ids must be the same in every pytest-xdist worker
_FIXED_HEX = "5dcc875eccec4ad5a12e113e264307c5"


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!!!not base64!!!",
        base64.urlsafe_b64encode(b"not json").decode(),
        _cursor({"a": 1}),
        _cursor(["User", "-last_login_at,id"]),
        _cursor(["EducationalContent", "-last_login_at,id", [None, _FIXED_HEX]]),
        _cursor(["User", "last_login_at,id", [None, _FIXED_HEX]]),
        _cursor(["User", "-last_login_at,id", [None]]),
        _cursor(["User", "-last_login_at,id", [None, None]]),
        _cursor(["User", "-last_login_at,id", [12, _FIXED_HEX]]),
        _cursor(["User", "-last_login_at,id", ["2026-01-01T00:00:00", _FIXED_HEX]]),
        _cursor(["User", "-last_login_at,id", ["yesterday", _FIXED_HEX]]),
        _cursor(["User", "-last_login_at,id", [None, "zz"]]),
        "A" * 5000,
    ],
)
def test_bad_or_tampered_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(ValidationError) as caught:
        bind(User, ORDER.after(cursor, 5))
    assert caught.value.field == "cursor"


def test_a_cursor_of_another_ordering_or_entity_is_refused() -> None:
    cursor = _valid()
    with pytest.raises(ValidationError):
        bind(User, Query().order_by("last_login_at").after(cursor, 5))
    with pytest.raises(ValidationError):
        bind(EducationalContent, Query().order_by("-published_at").after(cursor, 5))


def test_a_cursor_needs_a_limit_and_no_skip() -> None:
    with pytest.raises(ValidationError):
        bind(User, Query(ordering=ORDER.ordering, cursor=_valid()))
    with pytest.raises(ValidationError):
        bind(User, Query(ordering=ORDER.ordering, cursor=_valid(), skip=1, limit=5))


def test_a_cursor_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(ValidationError):
        bind(User, Query(ordering=ORDER.ordering, cursor=42, limit=5))  # type: ignore[arg-type]
