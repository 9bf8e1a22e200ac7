"""Fresh planner statistics after bulk work (PostgreSQL).

Right after a bulk insert that changed a large share of a table, the planner still plans
with the old statistics: after 50,000 users went into one organization, get by id scanned
the partial username index over all of them (11 ms instead of 0.04 ms) until autovacuum
analyzed the table. So after a commit that inserted at least `MIN_ROWS` rows into a table,
and at least `MIN_SHARE` of its live rows (`pg_class.reltuples`: the estimate from before
the insert), the unit of work runs ANALYZE of that table through `edu_analyze` (migration
0006: the application role owns no table). It never fails the commit: a failure is logged.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from edu_domain.ports import Change, ChangeKind
from edu_infra.sqlalchemy.mapping import table_of

log = logging.getLogger("edu_infra")

MIN_ROWS = 1_000
MIN_SHARE = 0.10

_ESTIMATES = (
    "SELECT c.relname, c.reltuples FROM pg_catalog.pg_class c WHERE c.oid = ANY($1::regclass[])"
)


def bulk_inserts(changes: Sequence[Change]) -> dict[str, int]:
    """Rows a commit inserted per table, for the tables with at least `MIN_ROWS`."""
    counted = Counter(c.entity for c in changes if c.kind is ChangeKind.INSERT)
    return {table_of(cls).name: n for cls, n in counted.items() if n >= MIN_ROWS}


def stale(inserted: int, estimate: float) -> bool:
    """True when `inserted` new rows leave a table's statistics stale: enough rows, and a
    large share of the live rows the statistics knew of (-1: never analyzed)."""
    return inserted >= MIN_ROWS and inserted >= MIN_SHARE * max(estimate, 0.0)


async def analyze_stale(driver: Any, schema: str, inserted: Mapping[str, int]) -> list[str]:
    """ANALYZE the tables of `inserted` whose statistics the inserts left stale (in the
    caller's transaction on `driver`); the tables analyzed."""
    names = sorted(inserted)
    qualified = {name: f'"{schema}"."{name}"' for name in names}
    estimates = dict(await driver.fetch(_ESTIMATES, [qualified[n] for n in names]))
    chosen = [n for n in names if stale(inserted[n], float(estimates.get(n, -1)))]
    for name in chosen:
        await driver.execute(f'SELECT "{schema}".edu_analyze($1::regclass)', qualified[name])
    return chosen


def warn(error: BaseException) -> None:
    """A failed ANALYZE costs only speed until autovacuum analyzes: a warning."""
    log.warning(
        "ANALYZE after a bulk insert failed (%s); autovacuum will catch up", type(error).__name__
    )


__all__ = ["MIN_ROWS", "MIN_SHARE", "analyze_stale", "bulk_inserts", "stale", "warn"]
