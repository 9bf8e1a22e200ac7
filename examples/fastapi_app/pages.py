"""Offset pages and keyset cursors for list endpoints."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from edu_domain import Query, ValidationError
from examples.fastapi_app.http_utils import BadRequest

#: Bounds of the HTTP API (tighter than the core's own, which serve batch jobs too).
MAX_PAGE = 100
MAX_SKIP = 100_000
_BOTH = "use either skip or a cursor, not both"


def check_paging(skip: int, cursor: str | None) -> None:
    if cursor is not None and skip:
        raise BadRequest("cursor", _BOTH)


def paged(query: Query, skip: int, limit: int, cursor: str | None) -> Query:
    """A keyset page when a cursor is given (the fast way to walk far), else an offset page."""
    check_paging(skip, cursor)
    if cursor is None:
        return query.page(skip, limit)
    return query.after(cursor, limit)


@contextmanager
def cursor_errors_as_400() -> Iterator[None]:
    """A cursor that is well formed but not one of this query's is a 400, not a 422: the
    schema cannot tell it apart from a good one."""
    try:
        yield
    except ValidationError as error:
        if error.field != "cursor":
            raise
        raise BadRequest("cursor", "not a cursor of this query") from None
