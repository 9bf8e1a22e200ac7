"""`Query` and `Order`: the immutable value a caller builds and hands to `UnitOfWork.find`."""

from __future__ import annotations

from typing import Any

import attrs
from attrs import frozen

from edu_domain.errors import ValidationError
from edu_domain.query.filters import Condition, Filter, Op, all_of


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
