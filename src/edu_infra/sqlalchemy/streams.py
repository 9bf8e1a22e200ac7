"""`SqlUnitOfWork.stream`: a server-side cursor read batch by batch, as entities.

The cursor is a snapshot: rows the unit of work deleted since it opened are skipped, as the
memory adapter, which reads as it goes, never yields them. Streamed entities are held weakly
(bounded memory); one that recorded an event by the time the next is asked for is kept until
commit, so its events are published.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from edu_domain.model import Entity
from edu_domain.query import BoundQuery
from edu_infra.sqlalchemy.identity import Identities
from edu_infra.sqlalchemy.rows import RowPath, next_or_none
from edu_infra.sqlalchemy.transaction import UowTransaction

log = logging.getLogger("edu_infra")


async def streamed(
    tx: UowTransaction,
    rows: RowPath,
    held: Identities,
    bound: BoundQuery,
    batch_size: int,
    *,
    still_open: Callable[[], None],
    visible: Callable[[Entity], bool],
) -> AsyncIterator[Any]:
    """The entities of `bound`, `batch_size` rows a fetch; `still_open` raises once the
    unit of work is closed, `visible` says whether a row may be yielded."""
    still_open()
    result = await tx.read(lambda: rows.stream(bound, batch_size))
    last: Entity | None = None
    try:
        while True:
            still_open()
            if last is not None and last.has_events():
                held.track(last)
            item = await tx.read(lambda: next_or_none(result))
            if item is None:
                return
            if held.gone(item) or not visible(item):
                continue
            last = item
            yield item
    finally:
        if last is not None and last.has_events():
            held.track(last)
        try:
            await result.close()
        except Exception:  # closing a cursor on a dead connection
            log.debug("closing a stream failed", exc_info=True)


__all__ = ["streamed"]
