"""Query templates: the cache key of a compiled read is the query's shape, never its values."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import attrs
from hypothesis import given
from hypothesis import strategies as st

from edu_domain.model import User, UserStatus
from edu_domain.query import F, Query, bind
from edu_infra.sqlalchemy.params import Param, like_prefix, template

texts = st.text(min_size=1, max_size=20).filter(lambda t: "\x00" not in t)


@given(a=texts, b=texts)
def test_queries_that_differ_only_in_values_share_one_template(a: str, b: str) -> None:
    def shaped(value: str) -> tuple[object, list[object]]:
        query = Query.where(F("email").eq(value) | F("full_name").icontains(value)).page(3, 7)
        return template(bind(User, query))

    (shape_a, values_a), (shape_b, values_b) = shaped(a), shaped(b)
    assert shape_a == shape_b and hash(shape_a) == hash(shape_b)
    assert values_a == [a, a, 3, 8]  # the limit is one past the page
    assert values_b == [b, b, 3, 8]


@given(n=st.integers(1, 50), m=st.integers(1, 50))
def test_in_lists_of_any_length_are_one_array_parameter(n: int, m: int) -> None:
    def shaped(size: int) -> tuple[object, list[object]]:
        ids = [uuid4() for _ in range(size)]
        return template(bind(User, Query.where(F("id").in_(ids))))

    (shape_n, values_n), (shape_m, values_m) = shaped(n), shaped(m)
    assert shape_n == shape_m
    assert [len(v) for v in values_n] == [n]  # type: ignore[arg-type]
    assert [len(v) for v in values_m] == [m]  # type: ignore[arg-type]


def test_what_changes_the_sql_stays_in_the_template() -> None:
    def shape(query: Query) -> object:
        return template(bind(User, query))[0]

    assert shape(Query.where(F("full_name").is_null())) != shape(
        Query.where(F("full_name").is_null(False))
    )
    assert shape(Query.where(F("status").in_([]))) != shape(
        Query.where(F("status").in_([UserStatus.ACTIVE]))
    )
    assert shape(Query().page(0, 5)) != shape(Query().page(5, 5))  # OFFSET or not
    assert shape(Query()) != shape(Query().page(0, 5))  # LIMIT or not


def test_a_null_keyset_position_stays_in_the_template() -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    first = Query().order_by("last_login_at").after(None, 2)
    bound = bind(User, first)
    null_after = attrs.evolve(bound, after=(None, uuid4()))
    dated_after = attrs.evolve(bound, after=(when, uuid4()))
    null_shape, null_values = template(null_after)
    dated_shape, dated_values = template(dated_after)
    assert null_shape != dated_shape
    assert null_shape.after is not None and null_shape.after[0] is None
    assert isinstance(null_shape.after[1], Param)
    assert len(dated_values) == len(null_values) + 1


@given(prefix=texts)
def test_like_prefix_matches_exactly_the_strings_that_start_with_it(prefix: str) -> None:
    pattern = like_prefix(prefix)
    assert pattern.endswith("%")
    body = pattern[:-1]
    unescaped, i = [], 0
    while i < len(body):
        if body[i] == "/":
            assert body[i + 1] in "/%_"
            unescaped.append(body[i + 1])
            i += 2
        else:
            assert body[i] not in "%_"
            unescaped.append(body[i])
            i += 1
    assert "".join(unescaped) == prefix
