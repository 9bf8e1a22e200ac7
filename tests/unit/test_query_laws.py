"""Laws of the memory query evaluator that hold for every input (hypothesis).

The SQL compiler is checked against this evaluator, so these laws are what "agree" means.
"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from edu_domain.model import User, UserRole
from edu_domain.query import (
    F,
    Filter,
    Query,
    bind,
    bind_filter,
    encode_cursor,
)
from edu_domain.uow_checks import check_group_fields, check_measures
from edu_infra.memory.evaluate import (
    compare,
    group_counts,
    matches,
    order_values,
    select,
    sort_rows,
)

Row = dict[str, Any]
T0 = datetime(2026, 1, 1, tzinfo=UTC)

# Small value domains, so that ties, nulls and collisions are common.
names = st.sampled_from(["", "a", "A", "ab", "b", "Zed", "é", "Émile", "ß"])
counts = st.integers(min_value=-2, max_value=3)
times = st.integers(min_value=-2, max_value=2).map(lambda h: T0 + timedelta(hours=h))
roles = st.sampled_from(list(UserRole))


@st.composite
def rows(draw: st.DrawFn) -> list[Row]:
    size = draw(st.integers(min_value=0, max_value=14))
    ids = draw(st.lists(st.integers(0, 2**128 - 1), min_size=size, max_size=size, unique=True))
    return [
        {
            "id": UUID(int=i),
            "full_name": draw(st.none() | names),
            "failed_login_count": draw(counts),
            "email_verified": draw(st.booleans()),
            "last_login_at": draw(st.none() | times),
            "role": draw(roles),
        }
        for i in ids
    ]


def conditions() -> st.SearchStrategy[Filter]:
    name, count, when = F("full_name"), F("failed_login_count"), F("last_login_at")
    return st.one_of(
        names.flatmap(lambda v: st.sampled_from([name.eq(v), name.ne(v), name.lt(v), name.ge(v)])),
        names.map(name.startswith),
        names.map(name.icontains),
        st.lists(names, min_size=1, max_size=3).map(name.in_),
        st.booleans().map(name.is_null),
        counts.flatmap(lambda v: st.sampled_from([count.eq(v), count.le(v), count.gt(v)])),
        times.flatmap(lambda v: st.sampled_from([when.eq(v), when.ne(v), when.lt(v)])),
        st.booleans().map(when.is_null),
        st.booleans().map(F("email_verified").eq),
        roles.flatmap(lambda v: st.sampled_from([F("role").eq(v), F("role").ne(v)])),
    )


filters = st.recursive(
    conditions(),
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda p: p[0] & p[1]),
        st.tuples(inner, inner).map(lambda p: p[0] | p[1]),
    ),
    max_leaves=6,
)
order_fields = ["full_name", "failed_login_count", "email_verified", "last_login_at", "role"]
orderings = st.lists(
    st.tuples(st.sampled_from(order_fields), st.booleans()).map(
        lambda p: ("-" if p[1] else "") + p[0]
    ),
    max_size=3,
)


def ids_matching(flt: Filter, data: list[Row]) -> set[UUID]:
    bound = bind_filter(User, flt)
    return {row["id"] for row in data if matches(bound, row)}


def ordered_ids(query: Query, data: list[Row]) -> list[UUID]:
    found, _ = select(bind(User, query), data)
    return [row["id"] for row in found]


# ---------------------------------------------------------------- boolean algebra


@given(rows(), filters, filters)
def test_and_is_intersection_and_or_is_union(data: list[Row], a: Filter, b: Filter) -> None:
    assert ids_matching(a & b, data) == ids_matching(a, data) & ids_matching(b, data)
    assert ids_matching(a | b, data) == ids_matching(a, data) | ids_matching(b, data)


@given(rows(), filters, filters)
def test_and_and_or_commute(data: list[Row], a: Filter, b: Filter) -> None:
    assert ids_matching(a & b, data) == ids_matching(b & a, data)
    assert ids_matching(a | b, data) == ids_matching(b | a, data)


@given(rows(), filters, filters, filters)
def test_and_and_or_associate(data: list[Row], a: Filter, b: Filter, c: Filter) -> None:
    assert ids_matching((a & b) & c, data) == ids_matching(a & (b & c), data)
    assert ids_matching((a | b) | c, data) == ids_matching(a | (b | c), data)


@given(rows(), filters, filters, filters)
def test_and_and_or_distribute(data: list[Row], a: Filter, b: Filter, c: Filter) -> None:
    assert ids_matching(a & (b | c), data) == ids_matching((a & b) | (a & c), data)
    assert ids_matching(a | (b & c), data) == ids_matching((a | b) & (a | c), data)


@given(rows(), filters, filters)
def test_and_and_or_absorb(data: list[Row], a: Filter, b: Filter) -> None:
    assert ids_matching(a & (a | b), data) == ids_matching(a, data)
    assert ids_matching(a | (a & b), data) == ids_matching(a, data)


# ---------------------------------------------------------------- null semantics


@given(rows(), st.none() | names)
def test_ne_is_the_exact_complement_of_eq(data: list[Row], value: str | None) -> None:
    everyone = {row["id"] for row in data}
    eq, ne = F("full_name").eq(value), F("full_name").ne(value)
    assert ids_matching(ne, data) == everyone - ids_matching(eq, data)


@given(rows(), names)
def test_comparisons_and_in_never_match_null(data: list[Row], value: str) -> None:
    nulls = {row["id"] for row in data if row["full_name"] is None}
    name = F("full_name")
    for flt in (name.eq(value), name.lt(value), name.ge(value), name.in_([value])):
        assert not ids_matching(flt, data) & nulls
    assert (
        ids_matching(name.lt(value) | name.ge(value), data) == {row["id"] for row in data} - nulls
    )


@given(rows(), names)
def test_icontains_and_startswith_follow_python_strings(data: list[Row], value: str) -> None:
    named = [row for row in data if row["full_name"] is not None]
    assert ids_matching(F("full_name").icontains(value), data) == {
        row["id"] for row in named if value.lower() in row["full_name"].lower()
    }
    assert ids_matching(F("full_name").startswith(value), data) == {
        row["id"] for row in named if row["full_name"].startswith(value)
    }


# ---------------------------------------------------------------- ordering and pages


@given(rows(), orderings, st.randoms(use_true_random=False))
def test_ordering_is_total_and_independent_of_input_order(
    data: list[Row], keys: list[str], rnd: random.Random
) -> None:
    ordering = bind(User, Query().order_by(*keys)).ordering
    ordered = sort_rows(data, ordering)
    shuffled = list(data)
    rnd.shuffle(shuffled)
    assert [r["id"] for r in sort_rows(shuffled, ordering)] == [r["id"] for r in ordered]
    for before, after in itertools.pairwise(ordered):
        a, b = order_values(before, ordering), order_values(after, ordering)
        assert compare(a, b, ordering) < 0
        assert compare(b, a, ordering) > 0


@given(rows(), orderings)
def test_nulls_sort_last_ascending_and_first_descending(data: list[Row], keys: list[str]) -> None:
    for descending in (False, True):
        query = Query().order_by(("-" if descending else "") + "full_name")
        names_in_order = [row["full_name"] for row in sort_rows(data, bind(User, query).ordering)]
        present = [n for n in names_in_order if n is not None]
        nulls = [n for n in names_in_order if n is None]
        assert names_in_order == (nulls + present if descending else present + nulls)
        assert present == sorted(present, reverse=descending)


@given(rows(), filters, orderings, st.integers(min_value=1, max_value=5))
def test_offset_pages_partition_the_result(
    data: list[Row], flt: Filter, keys: list[str], limit: int
) -> None:
    query = Query.where(flt).order_by(*keys)
    everything = ordered_ids(query, data)
    pages = [ordered_ids(query.page(skip, limit), data) for skip in range(0, 16, limit)]
    assert [i for page in pages for i in page] == everything
    assert all(len(page) <= limit for page in pages)


@given(rows(), filters, orderings, st.integers(min_value=1, max_value=5))
def test_keyset_pages_partition_the_result(
    data: list[Row], flt: Filter, keys: list[str], limit: int
) -> None:
    query = Query.where(flt).order_by(*keys)
    everything = ordered_ids(query, data)
    seen: list[UUID] = []
    cursor = None
    for _ in range(len(data) + 1):
        bound = bind(User, query.after(cursor, limit))
        page, more = select(bound, data)
        seen += [row["id"] for row in page]
        if not more:
            break
        cursor = encode_cursor(User, bound.ordering, order_values(page[-1], bound.ordering))
    assert seen == everything
    assert len(set(seen)) == len(seen)


@given(rows(), filters, st.sampled_from([["role"], ["email_verified", "full_name"]]), filters)
def test_group_counts_add_up(data: list[Row], flt: Filter, by: list[str], measure: Filter) -> None:
    fields, measures = check_group_fields(User, by), check_measures(User, {"m": measure})
    selected = [row for row in data if matches(bind_filter(User, flt), row)]
    groups = group_counts(selected, fields, measures)
    assert sum(g.count for g in groups) == len(selected)
    assert sum(g.measures["m"] for g in groups) == len(ids_matching(flt & measure, data))
    assert all(g.count > 0 and 0 <= g.measures["m"] <= g.count for g in groups)
    ascending = bind(User, Query().order_by(*by)).ordering[: len(by)]
    keys = [g.key for g in groups]
    assert all(compare(a, b, ascending) < 0 for a, b in itertools.pairwise(keys))
