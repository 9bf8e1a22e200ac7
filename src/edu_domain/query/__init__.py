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
"""

from __future__ import annotations

import base64
import binascii
import json
import types
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from enum import Enum, StrEnum
from typing import Any, Generic, TypeVar, Union
from uuid import UUID

import attrs
from attrs import field, frozen

from edu_domain.errors import ValidationError
from edu_domain.model.base import Entity

MAX_LIMIT = 1_000
MAX_SKIP = 10_000_000
MAX_IN_VALUES = 1_000
MAX_TEXT_VALUE = 1_000
MAX_CURSOR = 4_096
#: Integer fields are 32-bit columns (version, counters); wider query values are refused
#: here rather than by the database.
INT_MIN, INT_MAX = -(2**31), 2**31 - 1

T = TypeVar("T")


class Op(StrEnum):
    EQ = "eq"
    NE = "ne"
    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"
    IN = "in"
    IS_NULL = "is_null"
    CONTAINS_ALL = "contains_all"
    STARTSWITH = "startswith"
    ICONTAINS = "icontains"


class Kind(StrEnum):
    """What a field holds, as far as querying is concerned."""

    STR = "str"
    INT = "int"
    BOOL = "bool"
    DATETIME = "datetime"
    UUID = "uuid"
    ENUM = "enum"
    TAGS = "tags"
    JSON = "json"


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
ORDERABLE = frozenset({Kind.STR, Kind.INT, Kind.DATETIME, Kind.UUID, Kind.BOOL, Kind.ENUM})


# --------------------------------------------------------------------------- filters


class _Combinable:
    def __and__(self, other: Filter) -> And:
        return And(_flatten(And, (typing.cast("Filter", self), other)))

    def __or__(self, other: Filter) -> Or:
        return Or(_flatten(Or, (typing.cast("Filter", self), other)))


@frozen
class Condition(_Combinable):
    """`field op value`; see the module docstring for null semantics."""

    field: str
    op: Op
    value: Any = None


@frozen
class And(_Combinable):
    parts: tuple[Filter, ...]


@frozen
class Or(_Combinable):
    parts: tuple[Filter, ...]


Filter = Union[Condition, And, Or]  # noqa: UP007 - a runtime alias used in isinstance checks


def _flatten(kind: type[And] | type[Or], parts: Iterable[Filter]) -> tuple[Filter, ...]:
    flat: list[Filter] = []
    for part in parts:
        flat.extend(part.parts if isinstance(part, kind) else (part,))
    return tuple(flat)


def all_of(*parts: Filter) -> Filter:
    return parts[0] if len(parts) == 1 else And(_flatten(And, parts))


def any_of(*parts: Filter) -> Filter:
    return parts[0] if len(parts) == 1 else Or(_flatten(Or, parts))


@frozen
class F:
    """A field reference by name: `F("created_at").ge(since)`."""

    name: str

    def eq(self, value: Any) -> Condition:
        return Condition(self.name, Op.EQ, value)

    def ne(self, value: Any) -> Condition:
        return Condition(self.name, Op.NE, value)

    def lt(self, value: Any) -> Condition:
        return Condition(self.name, Op.LT, value)

    def le(self, value: Any) -> Condition:
        return Condition(self.name, Op.LE, value)

    def gt(self, value: Any) -> Condition:
        return Condition(self.name, Op.GT, value)

    def ge(self, value: Any) -> Condition:
        return Condition(self.name, Op.GE, value)

    def in_(self, values: Iterable[Any]) -> Condition:
        return Condition(self.name, Op.IN, values)

    def is_null(self, null: bool = True) -> Condition:
        return Condition(self.name, Op.IS_NULL, null)

    def not_null(self) -> Condition:
        return Condition(self.name, Op.IS_NULL, False)

    def contains_all(self, values: Iterable[str]) -> Condition:
        return Condition(self.name, Op.CONTAINS_ALL, values)

    def startswith(self, prefix: str) -> Condition:
        return Condition(self.name, Op.STARTSWITH, prefix)

    def icontains(self, text: str) -> Condition:
        return Condition(self.name, Op.ICONTAINS, text)


# --------------------------------------------------------------------------- query


@frozen
class Order:
    field: str
    descending: bool = False

    @classmethod
    def parse(cls, key: str) -> Order:
        """`"-created_at"` is descending, `"created_at"` or `"+created_at"` ascending."""
        if not isinstance(key, str) or not key:
            raise ValidationError("order_by", "an order key must be a non-empty string")
        if key[0] in "+-":
            return cls(key[1:], key[0] == "-")
        return cls(key)


@frozen
class Query:
    """Filter, ordering and page. Immutable: every builder returns a new Query."""

    filter: Filter | None = None
    ordering: tuple[Order, ...] = ()
    skip: int = 0
    limit: int | None = None
    cursor: str | None = None

    @classmethod
    def where(cls, *filters: Filter, **equals: Any) -> Query:
        return cls().and_where(*filters, **equals)

    def and_where(self, *filters: Filter, **equals: Any) -> Query:
        parts = [*([self.filter] if self.filter is not None else []), *filters]
        parts += [Condition(name, Op.EQ, value) for name, value in equals.items()]
        return attrs.evolve(self, filter=all_of(*parts) if parts else None)

    def order_by(self, *keys: str | Order) -> Query:
        orders = tuple(key if isinstance(key, Order) else Order.parse(key) for key in keys)
        return attrs.evolve(self, ordering=orders)

    def page(self, skip: int = 0, limit: int = 20) -> Query:
        """An offset page."""
        return attrs.evolve(self, skip=skip, limit=limit, cursor=None)

    def after(self, cursor: str | None, limit: int = 20) -> Query:
        """A keyset page: the rows after `cursor` (a `Page.next_cursor`); None is the start."""
        return attrs.evolve(self, skip=0, limit=limit, cursor=cursor)


@frozen
class Page(Generic[T]):
    """One page of results; `next_cursor` continues after the last item, or is None."""

    items: tuple[T, ...]
    next_cursor: str | None = None

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> T:
        return self.items[index]


@frozen
class Group:
    """One group of a grouped count: the key values, the row count, the extra measures."""

    key: tuple[Any, ...]
    count: int
    measures: Mapping[str, int] = field(factory=dict)


@frozen
class Tally:
    """A grouped count and the counts of other entities read with it (`UnitOfWork.tally`)."""

    groups: tuple[Group, ...]
    totals: Mapping[str, int] = field(factory=dict)


# --------------------------------------------------------------------------- fields


@frozen
class FieldInfo:
    name: str
    kind: Kind
    nullable: bool
    enum: type[Enum] | None = None


_DESCRIBED: dict[type[Entity], Mapping[str, FieldInfo]] = {}


def describe(cls: type[Entity]) -> Mapping[str, FieldInfo]:
    """The queryable fields of an entity class, from its attrs fields and their types."""
    fields = _DESCRIBED.get(cls)
    if fields is None:
        hints = typing.get_type_hints(cls)
        fields = {a.name: _field_info(a.name, hints[a.name]) for a in attrs.fields(cls)}
        _DESCRIBED[cls] = fields
    return fields


def _field_info(name: str, hint: Any) -> FieldInfo:
    args = typing.get_args(hint)
    nullable = False
    if typing.get_origin(hint) in (Union, types.UnionType) and type(None) in args:
        nullable = True
        (hint,) = (arg for arg in args if arg is not type(None))
    origin = typing.get_origin(hint)
    if origin is tuple:
        return FieldInfo(name, Kind.TAGS, nullable)
    if origin is dict or hint is dict:
        return FieldInfo(name, Kind.JSON, nullable)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return FieldInfo(name, Kind.ENUM, nullable, hint)
    simple = {
        bool: Kind.BOOL,
        int: Kind.INT,
        str: Kind.STR,
        datetime: Kind.DATETIME,
        UUID: Kind.UUID,
    }
    return FieldInfo(name, simple[hint], nullable)


def field_info(cls: type[Entity], name: object, part: str) -> FieldInfo:
    fields = describe(cls)
    if not isinstance(name, str) or name not in fields:
        raise ValidationError(part, f"{cls.__name__} has no field {name!r}")
    if name in _secret_fields(cls):
        raise ValidationError(part, f"{cls.__name__}.{name} is secret and cannot be queried")
    return fields[name]


_SECRETS: dict[type[Entity], frozenset[str]] = {}


def _secret_fields(cls: type[Entity]) -> frozenset[str]:
    """Fields kept out of reprs (password and token hashes): filtering or ordering by them
    would let a caller guess a hash piece by piece (`startswith`), so no query names them."""
    secret = _SECRETS.get(cls)
    if secret is None:
        secret = frozenset(a.name for a in attrs.fields(cls) if a.repr is False)
        _SECRETS[cls] = secret
    return secret


# --------------------------------------------------------------------------- binding


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
        return tuple(dict.fromkeys(_text(info.name, v) for v in values))
    if op in (Op.STARTSWITH, Op.ICONTAINS):
        return _text(info.name, value)
    return coerce(info, value)


_CONTEXT_CASED = frozenset("\u03a3\u0130")  # Σ (final-sigma rule), İ (lowers to two)


def fold(text: str) -> str:
    """`icontains`' case folding: every character lowered on its own, to one character.

    Python's `str.lower` lowers Σ by context (ς at a word's end) and İ to two characters;
    PostgreSQL's `lower()` (libc UTF-8 locale) lowers each character alone, to one. Every
    adapter uses this, so `icontains` matches the same rows everywhere.
    """
    if _CONTEXT_CASED.isdisjoint(text):
        return text.lower()
    return "".join(c.lower()[0] for c in text)


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValidationError(name, "expects a string")
    if len(value) > MAX_TEXT_VALUE:
        raise ValidationError(name, f"query text too long (max {MAX_TEXT_VALUE})")
    if "\x00" in value:
        raise ValidationError(name, "must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(name, "must be valid Unicode") from None
    return value


def coerce(info: FieldInfo, value: Any) -> Any:
    """A query value of the field's type, or ValidationError."""
    if value is None:
        raise ValidationError(info.name, "use is_null to match a missing value")
    kind = info.kind
    if kind is Kind.STR:
        return _text(info.name, value)
    if kind is Kind.BOOL:
        if not isinstance(value, bool):
            raise ValidationError(info.name, "expects true or false")
        return value
    if kind is Kind.INT:
        if isinstance(value, bool) or not isinstance(value, int) or not INT_MIN <= value <= INT_MAX:
            raise ValidationError(info.name, "expects a 32-bit integer")
        return value
    if kind is Kind.DATETIME:
        if not isinstance(value, datetime) or value.utcoffset() is None:
            raise ValidationError(info.name, "expects a timezone-aware datetime")
        try:
            value.astimezone(UTC)
        except OverflowError:
            # every adapter compares in UTC: a value with no UTC form is refused, not guessed
            raise ValidationError(
                "query", f"{info.name}: the datetime is out of range once converted to UTC"
            ) from None
        return value
    if kind is Kind.UUID:
        if isinstance(value, UUID):
            return value
        if isinstance(value, str):
            try:
                return UUID(value)
            except ValueError:
                pass
        raise ValidationError(info.name, "expects a UUID")
    if kind is Kind.ENUM:
        assert info.enum is not None
        try:
            return info.enum(value)
        except (ValueError, TypeError):
            allowed = ", ".join(str(m.value) for m in info.enum)
            raise ValidationError(info.name, f"expects one of: {allowed}") from None
    raise ValidationError(info.name, f"a {kind} field cannot be compared")


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


# --------------------------------------------------------------------------- cursors


def _encode_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value if not isinstance(value, Enum) else value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return value.hex
    if isinstance(value, Enum):
        return value.value
    raise TypeError(type(value).__name__)  # pragma: no cover - orderable kinds only


def _decode_value(info: FieldInfo, raw: Any) -> Any:
    if raw is None:
        if not info.nullable:
            raise ValueError("null for a required field")
        return None
    if info.kind is Kind.DATETIME:
        if not isinstance(raw, str):
            raise ValueError("datetime")
        parsed = datetime.fromisoformat(raw)
        if parsed.utcoffset() is None:
            raise ValueError("naive datetime")
        return parsed
    if info.kind in (Kind.BOOL,) and not isinstance(raw, bool):
        raise ValueError("bool")
    if info.kind is Kind.INT and (isinstance(raw, bool) or not isinstance(raw, int)):
        raise ValueError("int")
    if info.kind in (Kind.STR, Kind.UUID, Kind.ENUM) and not isinstance(raw, str):
        raise ValueError("str")
    return coerce(info, raw)


def cursor_key(ordering: Sequence[Order]) -> str:
    return ",".join(("-" if o.descending else "") + o.field for o in ordering)


def encode_cursor(cls: type[Entity], ordering: Sequence[Order], values: Sequence[Any]) -> str:
    """An opaque cursor: the entity, the ordering and the last row's order values."""
    payload = [cls.__name__, cursor_key(ordering), [_encode_value(v) for v in values]]
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cls: type[Entity], ordering: Sequence[Order], cursor: object) -> tuple[Any, ...]:
    if not isinstance(cursor, str) or not cursor or len(cursor) > MAX_CURSOR:
        raise ValidationError("cursor", "not a cursor of this query")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        name, key, values = json.loads(raw)
        if name != cls.__name__ or key != cursor_key(ordering) or len(values) != len(ordering):
            raise ValueError("cursor belongs to another query")
        fields = describe(cls)
        return tuple(
            _decode_value(fields[o.field], v) for o, v in zip(ordering, values, strict=True)
        )
    except (
        ValueError,
        TypeError,
        RecursionError,
        binascii.Error,
        UnicodeDecodeError,
        ValidationError,
    ):
        raise ValidationError("cursor", "not a cursor of this query") from None
