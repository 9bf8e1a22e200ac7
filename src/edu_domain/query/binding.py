"""`bind`: a `Query` checked against one entity class, the only form the adapters evaluate.

Unknown or secret fields, operators that do not suit a field's kind, wrong value types, bad
pages and cursors all raise `ValidationError` here, so every adapter refuses the same queries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from attrs import frozen

from edu_domain.errors import ValidationError
from edu_domain.model.base import Entity
from edu_domain.query.builder import Order, Query
from edu_domain.query.cursors import decode_cursor
from edu_domain.query.fields import ORDERABLE, FieldInfo, Kind, describe, field_info
from edu_domain.query.filters import And, Condition, Filter, Op, Or
from edu_domain.query.values import checked_text, coerce

MAX_LIMIT = 1_000
MAX_SKIP = 10_000_000
MAX_IN_VALUES = 1_000

_COMPARE = frozenset({Op.EQ, Op.NE, Op.LT, Op.LE, Op.GT, Op.GE, Op.IN, Op.IS_NULL})
_OPS_BY_KIND: dict[Kind, frozenset[Op]] = {
    Kind.STR: _COMPARE | {Op.STARTSWITH, Op.ICONTAINS},
    Kind.INT: _COMPARE,
    Kind.DATETIME: _COMPARE,
    Kind.UUID: _COMPARE,
    Kind.BOOL: frozenset({Op.EQ, Op.NE, Op.IS_NULL}),
    Kind.ENUM: frozenset({Op.EQ, Op.NE, Op.IN, Op.IS_NULL}),
    Kind.TAGS: frozenset({Op.CONTAINS_ALL}),
    Kind.JSON: frozenset(),
}


@frozen
class BoundQuery:
    """A query checked against one entity class, values coerced, ordering made total."""

    entity: type[Entity]
    filter: Filter | None
    ordering: tuple[Order, ...]
    skip: int
    limit: int | None
    after: tuple[Any, ...] | None

    def order_fields(self) -> tuple[FieldInfo, ...]:
        fields = describe(self.entity)
        return tuple(fields[o.field] for o in self.ordering)


def bind(cls: type[Entity], query: Query | None) -> BoundQuery:
    """Validate `query` for `cls`; the adapters evaluate only bound queries."""
    query = Query() if query is None else query
    if not isinstance(query, Query):
        raise ValidationError("query", "must be a Query")
    flt = bind_filter(cls, query.filter) if query.filter is not None else None
    ordering = _bind_ordering(cls, query.ordering)
    skip, limit = _bind_page(query.skip, query.limit)
    after = None
    if query.cursor is not None:
        if limit is None:
            raise ValidationError("cursor", "a keyset page needs a limit")
        if skip:
            raise ValidationError("cursor", "use either skip or a cursor, not both")
        after = decode_cursor(cls, ordering, query.cursor)
    return BoundQuery(cls, flt, ordering, skip, limit, after)


def bind_filter(cls: type[Entity], flt: object) -> Filter:
    if isinstance(flt, (And, Or)):
        if not flt.parts:
            raise ValidationError("filter", "and/or need at least one part")
        return type(flt)(tuple(bind_filter(cls, part) for part in flt.parts))
    if not isinstance(flt, Condition):
        raise ValidationError("filter", f"not a filter: {type(flt).__name__}")
    info = field_info(cls, flt.field, "filter")
    op = flt.op
    if op in (Op.EQ, Op.NE) and flt.value is None:
        return Condition(info.name, Op.IS_NULL, op is Op.EQ)
    if op not in _OPS_BY_KIND[info.kind]:
        raise ValidationError(info.name, f"operator {op!s} does not apply to a {info.kind} field")
    return Condition(info.name, op, _bind_value(info, op, flt.value))


def _bind_value(info: FieldInfo, op: Op, value: Any) -> Any:
    if op is Op.IS_NULL:
        if not isinstance(value, bool):
            raise ValidationError(info.name, "is_null takes true or false")
        return value
    if op is Op.IN:
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
            raise ValidationError(info.name, "in_ takes a list of values")
        values = tuple(value)
        if len(values) > MAX_IN_VALUES:
            raise ValidationError(info.name, f"in_ takes at most {MAX_IN_VALUES} values")
        return tuple(dict.fromkeys(coerce(info, v) for v in values))
    if op is Op.CONTAINS_ALL:
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
            raise ValidationError(info.name, "contains_all takes a list of strings")
        values = tuple(value)
        if not values or len(values) > MAX_IN_VALUES:
            raise ValidationError(info.name, f"contains_all takes 1 to {MAX_IN_VALUES} strings")
        return tuple(dict.fromkeys(checked_text(info.name, v) for v in values))
    if op in (Op.STARTSWITH, Op.ICONTAINS):
        return checked_text(info.name, value)
    return coerce(info, value)


def _bind_ordering(cls: type[Entity], ordering: object) -> tuple[Order, ...]:
    if not isinstance(ordering, tuple) or not all(isinstance(o, Order) for o in ordering):
        raise ValidationError("order_by", "must be order keys")
    seen: dict[str, Order] = {}
    for order in ordering:
        info = field_info(cls, order.field, "order_by")
        if info.kind not in ORDERABLE:
            raise ValidationError("order_by", f"cannot order by {info.kind} field {info.name!r}")
        seen.setdefault(info.name, Order(info.name, bool(order.descending)))
    seen.setdefault("id", Order("id", False))
    return tuple(seen.values())


def _bind_page(skip: object, limit: object) -> tuple[int, int | None]:
    if isinstance(skip, bool) or not isinstance(skip, int) or not 0 <= skip <= MAX_SKIP:
        raise ValidationError("skip", f"must be an integer from 0 to {MAX_SKIP}")
    if limit is None:
        return skip, None
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError("limit", f"must be an integer from 1 to {MAX_LIMIT}")
    return skip, limit
