"""Compiles bound `edu_domain.query` values to SQLAlchemy expressions, per dialect.

Only `BoundQuery` values reach this module: field names are checked against the entity and
mapped to columns through the table, values are coerced, so no string from a caller ever
becomes SQL. The semantics are those of `edu_domain.query` (the memory adapter's Python):
- comparisons and IN never match NULL, `ne` does;
- NULLS LAST ascending, NULLS FIRST descending, written out on both dialects (these are
  PostgreSQL's defaults, so its b-tree indexes still serve the ordering);
- strings compare by code point: PostgreSQL columns are `COLLATE "C"`, SQLite uses BINARY;
- `startswith` is case-sensitive: `LIKE` with escaped wildcards on PostgreSQL (served by
  the C-collated index), `substr(...) =` on SQLite, whose LIKE ignores ASCII case;
- `icontains` compares `lower()` forms. SQLite's `lower` is replaced by Python's
  `str.lower` on connect; PostgreSQL lowers with the database's default collation (set
  the database up with a UTF-8 locale: under the plain "C" locale only ASCII is folded,
  and PostgreSQL has no equivalent of Python's few one-to-many lower-case mappings).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    any_,
    bindparam,
    collate,
    false,
    func,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import UnaryExpression

from edu_domain.errors import ValidationError
from edu_domain.model import Entity
from edu_domain.query import (
    And,
    BoundQuery,
    Condition,
    Filter,
    Op,
    Or,
    Order,
    describe,
)
from edu_infra.sqlalchemy.mapping import column_of, table_of
from edu_infra.sqlalchemy.options import ENTITY
from edu_infra.sqlalchemy.params import Param
from edu_infra.sqlalchemy.types import Tags

Column = ColumnElement[Any]
#: Another entity counted alongside a grouped count: its class, filter and global filter.
Other = tuple[type[Entity], Filter | None, Sequence[ColumnElement[bool]]]


class QueryCompiler:
    """Turns bound filters, orderings and keyset positions into SQL for one dialect.

    Values are literals (bound as anonymous parameters) or `Param` markers of a template
    (`edu_infra.sqlalchemy.params`), which become named parameters: a template compiles
    once and runs with any values of its shape.
    """

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect

    @property
    def postgres(self) -> bool:
        return self.dialect == "postgresql"

    # ------------------------------------------------------------------ statements

    def select_page(self, bound: BoundQuery, *, core: bool = False) -> Select[Any]:
        """`SELECT entity` with filter, keyset position, order and one row past the page.

        `core`: select the table's columns instead of the mapped entity.
        """
        cls = bound.entity
        stmt = select(table_of(cls)) if core else select(cls)
        if bound.filter is not None:
            stmt = stmt.where(self.filter(cls, bound.filter))
        if bound.after is not None:
            stmt = stmt.where(self.after(cls, bound.ordering, bound.after))
        stmt = stmt.order_by(*self.order_by(cls, bound.ordering))
        skip: Any = bound.skip
        limit: Any = bound.limit
        if isinstance(skip, Param):
            stmt = stmt.offset(bindparam(skip.name, type_=Integer()))
        elif skip:
            stmt = stmt.offset(skip)
        if isinstance(limit, Param):  # the template's value is already limit + 1
            stmt = stmt.limit(bindparam(limit.name, type_=Integer()))
        elif limit is not None:
            stmt = stmt.limit(limit + 1)
        return stmt

    def select_count(self, bound: BoundQuery, *, core: bool = False) -> Select[Any]:
        source: Any = table_of(bound.entity) if core else bound.entity
        stmt = select(func.count()).select_from(source).execution_options(**{ENTITY: bound.entity})
        if bound.filter is not None:
            stmt = stmt.where(self.filter(bound.entity, bound.filter))
        return stmt

    def select_groups(
        self,
        cls: type[Entity],
        by: Sequence[str],
        flt: Filter | None,
        measures: Sequence[Filter],
        *,
        core: bool = False,
        others: Sequence[Other] = (),
    ) -> Select[Any]:
        """One statement: GROUP BY the fields, count(*), count(*) FILTER per measure, and a
        scalar count per other entity (`others`: class, filter, the caller's guards)."""
        keys = [column_of(cls, name) for name in by]
        labelled = [key.label(f"key_{i}") for i, key in enumerate(keys)]
        counts = [func.count().filter(self.filter(cls, m)) for m in measures]
        columns: list[Any] = [*labelled, func.count(), *counts]
        for other, other_filter, guards in others:
            sub = select(func.count()).select_from(table_of(other)).where(*guards)
            if other_filter is not None:
                sub = sub.where(self.filter(other, other_filter))
            columns.append(sub.scalar_subquery())
        source: Any = table_of(cls) if core else cls
        stmt = select(*columns).select_from(source).execution_options(**{ENTITY: cls})
        if flt is not None:
            stmt = stmt.where(self.filter(cls, flt))
        if keys:
            stmt = stmt.group_by(*keys).order_by(*(k.asc().nulls_last() for k in keys))
        return stmt

    # ------------------------------------------------------------------ filters

    def filter(self, cls: type[Entity], flt: Filter) -> ColumnElement[bool]:
        if isinstance(flt, And):
            return and_(*(self.filter(cls, part) for part in flt.parts))
        if isinstance(flt, Or):
            return or_(*(self.filter(cls, part) for part in flt.parts))
        return self.condition(cls, flt)

    def condition(self, cls: type[Entity], cond: Condition) -> ColumnElement[bool]:
        col: Column = column_of(cls, cond.field)
        op = cond.op
        value = _arg(col, cond.value) if op in _PLAIN else cond.value
        if op is Op.IS_NULL:
            return col.is_(None) if value else col.is_not(None)
        if op is Op.EQ:
            return _bool(col == value)
        if op is Op.NE:
            nullable = describe(cls)[cond.field].nullable
            return or_(col != value, col.is_(None)) if nullable else _bool(col != value)
        if op is Op.LT:
            return _bool(col < value)
        if op is Op.LE:
            return _bool(col <= value)
        if op is Op.GT:
            return _bool(col > value)
        if op is Op.GE:
            return _bool(col >= value)
        if op is Op.IN:
            if isinstance(value, Param):  # one array parameter, whatever the list's length
                items = bindparam(value.name, type_=postgresql.ARRAY(col.type))
                return _bool(col == any_(items))
            return col.in_(list(value)) if value else false()
        if op is Op.STARTSWITH:
            return self._startswith(col, value)
        if op is Op.ICONTAINS:
            return self._icontains(col, value)
        if op is Op.CONTAINS_ALL:
            return self._contains_all(col, value)
        raise ValidationError(cond.field, f"operator {op!s} is not supported")

    def _startswith(self, col: Column, prefix: str | Param) -> ColumnElement[bool]:
        if isinstance(prefix, Param):  # the template's value is the escaped LIKE pattern
            return col.like(bindparam(prefix.name, type_=col.type), escape="/")
        if self.postgres:
            return col.startswith(prefix, autoescape=True)
        return func.substr(col, 1, len(prefix)) == prefix

    def _icontains(self, col: Column, text: str | Param) -> ColumnElement[bool]:
        target = collate(col, "default") if self.postgres else col
        name = "strpos" if self.postgres else "instr"
        needle: ColumnElement[str] = (
            bindparam(text.name, type_=String())  # no column collation: lower() uses "default"
            if isinstance(text, Param)
            else bindparam(None, text, unique=True)
        )
        return _bool(getattr(func, name)(func.lower(target), func.lower(needle)) > 0)

    def _contains_all(self, col: Column, values: Sequence[str] | Param) -> ColumnElement[bool]:
        if isinstance(values, Param):
            array = postgresql.ARRAY(postgresql.TEXT())
            wanted = bindparam(values.name, type_=array)
            return type_coerce(col, array).contains(wanted)
        if self.postgres:
            array = postgresql.ARRAY(postgresql.TEXT())
            wanted = bindparam(None, list(values), type_=array, unique=True)
            return type_coerce(col, array).contains(wanted)
        items = func.json_each(type_coerce(col, Tags())).table_valued("value")
        matched = (
            select(func.count(items.c.value.distinct()))
            .where(items.c.value.in_(list(values)))
            .scalar_subquery()
        )
        return matched == len(values)

    # ------------------------------------------------------------------ ordering

    def order_by(self, cls: type[Entity], ordering: Sequence[Order]) -> list[UnaryExpression[Any]]:
        clauses: list[UnaryExpression[Any]] = []
        for order in ordering:
            col = column_of(cls, order.field)
            clauses.append(col.desc().nulls_first() if order.descending else col.asc().nulls_last())
        return clauses

    def after(
        self, cls: type[Entity], ordering: Sequence[Order], values: Sequence[Any]
    ) -> ColumnElement[bool]:
        """Rows strictly after `values` in `ordering` (lexicographic, nulls placed per order)."""
        terms: list[ColumnElement[bool]] = []
        equal: list[ColumnElement[bool]] = []
        for order, value in zip(ordering, values, strict=True):
            col = column_of(cls, order.field)
            nullable = describe(cls)[order.field].nullable
            beyond = self._beyond(col, value, order.descending, nullable)
            if beyond is not None:
                terms.append(and_(*equal, beyond) if equal else beyond)
            equal.append(col.is_(None) if value is None else _bool(col == _bound(col, value)))
        return or_(*terms) if terms else false()

    @staticmethod
    def _beyond(
        col: Column, value: Any, descending: bool, nullable: bool
    ) -> ColumnElement[bool] | None:
        """Values that sort strictly after `value` in one column, or None if none can."""
        if descending:  # NULLS FIRST, then values high to low
            if value is None:
                return col.is_not(None)
            return _bool(col < _bound(col, value))
        if value is None:  # ascending, NULLS LAST: nothing comes after a null
            return None
        after = _bool(col > _bound(col, value))
        return or_(after, col.is_(None)) if nullable else after


def _bound(col: Column, value: Any) -> ColumnElement[Any]:
    """`value` as a parameter of the column's type (booleans included: `col > true`)."""
    if isinstance(value, Param):
        return bindparam(value.name, type_=col.type)
    return bindparam(None, value, type_=col.type, unique=True)


#: Operators whose value is compared as is (a `Param` becomes a parameter of the column's type).
_PLAIN = frozenset({Op.EQ, Op.NE, Op.LT, Op.LE, Op.GT, Op.GE})


def _arg(col: Column, value: Any) -> Any:
    return bindparam(value.name, type_=col.type) if isinstance(value, Param) else value


def _bool(expression: Any) -> ColumnElement[bool]:
    """SQLAlchemy types comparisons of `ColumnElement[Any]` loosely; they are booleans."""
    return cast("ColumnElement[bool]", expression)


__all__ = ["QueryCompiler"]
