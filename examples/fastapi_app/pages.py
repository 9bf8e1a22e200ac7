"""Offset pages and keyset cursors for list endpoints."""

from __future__ import annotations

from edu_domain import Query, ValidationError

#: Bounds of the HTTP API (tighter than the core's own, which serve batch jobs too).
MAX_PAGE = 100
MAX_SKIP = 100_000


def paged(query: Query, skip: int, limit: int, cursor: str | None) -> Query:
    """A keyset page when a cursor is given (the fast way to walk far), else an offset page."""
    if cursor is None:
        return query.page(skip, limit)
    if skip:
        raise ValidationError("cursor", "use either skip or a cursor, not both")
    return query.after(cursor, limit)
