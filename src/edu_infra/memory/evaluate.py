"""Evaluates bound queries over rows in Python, with the semantics of `edu_domain.query`.

The SQL compiler must agree with this module on every query; the differential tests compare
them. Rows are mappings of field name to value.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import Enum
from typing import Any
from uuid import UUID

from edu_domain.query import (
    And,
    BoundQuery,
    Condition,
    Filter,
    Group,
    Op,
    Or,
    Order,
    fold,
)

Row = Mapping[str, Any]


def matches(flt: Filter | None, row: Row) -> bool:
    """Whether `row` satisfies a bound filter (None matches everything)."""
    if flt is None:
        return True
    if isinstance(flt, And):
        return all(matches(part, row) for part in flt.parts)
    if isinstance(flt, Or):
        return any(matches(part, row) for part in flt.parts)
    return _condition(flt, row[flt.field])


def _condition(cond: Condition, value: Any) -> bool:
    op, expected = cond.op, cond.value
    if op is Op.IS_NULL:
        return (value is None) is expected
    if op is Op.NE:
        return value is None or value != expected
    if value is None:
        return False
    return _TESTS[op](value, expected)


_TESTS: dict[Op, Callable[[Any, Any], bool]] = {
    Op.EQ: lambda v, x: bool(v == x),
    Op.LT: lambda v, x: bool(v < x),
    Op.LE: lambda v, x: bool(v <= x),
    Op.GT: lambda v, x: bool(v > x),
    Op.GE: lambda v, x: bool(v >= x),
    Op.IN: lambda v, x: v in x,
    Op.CONTAINS_ALL: lambda v, x: all(tag in v for tag in x),
    Op.STARTSWITH: lambda v, x: bool(v.startswith(x)),
    Op.ICONTAINS: lambda v, x: fold(x) in fold(v),
}


def sort_key(value: Any) -> Any:
    """A plain comparable for a non-null orderable value: enums by value, UUIDs as 128-bit ints."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, UUID):
        return value.int
    if isinstance(value, bool):
        return int(value)
    return value


def compare_values(a: Any, b: Any, descending: bool) -> int:
    """-1, 0 or 1; nulls after every value ascending, before them descending."""
    if a is None or b is None:
        nulls = (a is None) - (b is None)
        return -nulls if descending else nulls
    ka, kb = sort_key(a), sort_key(b)
    result = int(ka > kb) - int(ka < kb)
    return -result if descending else result


def compare(a: Sequence[Any], b: Sequence[Any], ordering: Sequence[Order]) -> int:
    """Compare two tuples of order-field values in the total order of `ordering`."""
    for x, y, order in zip(a, b, ordering, strict=True):
        result = compare_values(x, y, order.descending)
        if result:
            return result
    return 0


def order_values(row: Row, ordering: Sequence[Order]) -> tuple[Any, ...]:
    return tuple(row[order.field] for order in ordering)


def sort_rows(rows: Iterable[Row], ordering: Sequence[Order]) -> list[Row]:
    def cmp(a: Row, b: Row) -> int:
        return compare(order_values(a, ordering), order_values(b, ordering), ordering)

    return sorted(rows, key=functools.cmp_to_key(cmp))


def select(bound: BoundQuery, rows: Iterable[Row]) -> tuple[list[Row], bool]:
    """The page of matching rows in order, and whether more rows follow it."""
    ordered = sort_rows((row for row in rows if matches(bound.filter, row)), bound.ordering)
    if bound.after is not None:
        after = bound.after
        ordered = [
            row
            for row in ordered
            if compare(order_values(row, bound.ordering), after, bound.ordering) > 0
        ]
    if bound.limit is None:
        return ordered[bound.skip :], False
    window = ordered[bound.skip : bound.skip + bound.limit + 1]
    return window[: bound.limit], len(window) > bound.limit


def group_counts(
    rows: Iterable[Row], by: Sequence[str], measures: Mapping[str, Filter]
) -> list[Group]:
    """Counts per distinct key of `by` (sorted like an ascending order_by), with measures."""
    counts: dict[tuple[Any, ...], list[int]] = {}
    names = list(measures)
    for row in rows:
        key = tuple(row[name] for name in by)
        tally = counts.setdefault(key, [0] * (len(names) + 1))
        tally[0] += 1
        for i, name in enumerate(names, start=1):
            tally[i] += matches(measures[name], row)
    ascending = [Order(name) for name in by]

    def cmp(a: tuple[Any, ...], b: tuple[Any, ...]) -> int:
        return compare(a, b, ascending)

    keys = sorted(counts, key=functools.cmp_to_key(cmp))
    return [
        Group(key, counts[key][0], {name: counts[key][i] for i, name in enumerate(names, 1)})
        for key in keys
    ]
