"""The query language of the ports: a small pure value that every adapter evaluates alike.

Build queries from field *names*, never from class attributes (`User.email == x` changes
meaning once SQLAlchemy instruments the class):

    Query.where(status=UserStatus.ACTIVE, role="teacher").order_by("-created_at").page(0, 20)
    Query.where(F("tags").contains_all(["python"]) | F("title").icontains("async"))

Semantics every adapter follows (the contract tests and the differential test hold them):
- comparisons and `in_` never match a null field; `ne` does (a null differs from any value);
- nulls sort after every value in ascending order and before them in descending order;
- strings compare by code point; `icontains` compares `fold()` forms (each character's
  own lower case, as PostgreSQL's `lower()` under a libc UTF-8 locale does);
- every ordering ends with `id`, so it is total and pages never overlap or skip.

`bind` checks a query against an entity class: unknown fields, operators that do not suit the
field, wrong value types, bad pages and cursors all raise `ValidationError`.

The package re-exports every public name; its modules, leaves first: `filters` (the filter
tree and `F`), `builder` (`Query`, `Order`), `results` (`Page`, `Group`, `Tally`), `fields`
(what each entity field is to a query), `values` (value checks, `coerce`, `fold`), `cursors`
(keyset cursors) and `binding` (`bind`).
"""

from edu_domain.query.binding import (
    MAX_IN_VALUES,
    MAX_LIMIT,
    MAX_SKIP,
    BoundQuery,
    bind,
    bind_filter,
)
from edu_domain.query.builder import Order, Query
from edu_domain.query.cursors import MAX_CURSOR, cursor_key, decode_cursor, encode_cursor
from edu_domain.query.fields import ORDERABLE, FieldInfo, Kind, describe, field_info
from edu_domain.query.filters import And, Condition, F, Filter, Op, Or, all_of, any_of
from edu_domain.query.results import Group, Page, Tally
from edu_domain.query.values import INT_MAX, INT_MIN, MAX_TEXT_VALUE, coerce, fold

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "MAX_CURSOR",
    "MAX_IN_VALUES",
    "MAX_LIMIT",
    "MAX_SKIP",
    "MAX_TEXT_VALUE",
    "ORDERABLE",
    "And",
    "BoundQuery",
    "Condition",
    "F",
    "FieldInfo",
    "Filter",
    "Group",
    "Kind",
    "Op",
    "Or",
    "Order",
    "Page",
    "Query",
    "Tally",
    "all_of",
    "any_of",
    "bind",
    "bind_filter",
    "coerce",
    "cursor_key",
    "decode_cursor",
    "describe",
    "encode_cursor",
    "field_info",
    "fold",
]
