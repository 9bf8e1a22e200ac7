"""Fresh planner statistics after bulk work (PostgreSQL).

Right after a bulk insert that changed a large share of a table, the planner still plans
with the old statistics: after 50,000 users went into one organization, get by id scanned
the partial username index over all of them (11 ms instead of 0.04 ms) until autovacuum
analyzed the table. The same happens to an organization the statistics do not know yet
(a new school's import into a large table: a small share of the table, but every row of
that organization). So after a commit that inserted at least `MIN_ROWS` rows into a table,
and at least `MIN_SHARE` of its live rows (`pg_class.reltuples`: the estimate from before
the insert) or, in a tenant's unit of work, of that organization's rows now (one count on
the organization's index), the unit of work runs ANALYZE of that table through
`edu_analyze` (migration 0006: the application role owns no table). It never fails the
commit: a failure is logged.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from edu_domain.model import EducationalContent, LoginSession, User, UserProfile, UserToken
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


def stale(inserted: int, estimate: float, tenant_rows: int | None = None) -> bool:
    """True when `inserted` new rows leave a table's statistics stale: enough rows, and a
    large share of the live rows the statistics knew of (-1: never analyzed) or of the
    organization's rows (`tenant_rows`, counted after the insert)."""
    if inserted < MIN_ROWS:
        return False
    if inserted >= MIN_SHARE * max(estimate, 0.0):
        return True
    return tenant_rows is not None and inserted >= MIN_SHARE * tenant_rows


def _tenant_tables() -> frozenset[str]:
    return frozenset(
        table_of(cls).name
        for cls in (User, UserProfile, LoginSession, UserToken, EducationalContent)
        if cls.__tenant_field__ == "organization_id"
    )


async def _tenant_rows(driver: Any, table: str, tenant: UUID) -> int:
    count: int = await driver.fetchval(
        f"SELECT count(*) FROM {table} WHERE organization_id = $1",  # noqa: S608 - our names
        tenant,
    )
    return count


async def analyze_stale(
    driver: Any, schema: str, inserted: Mapping[str, int], tenant: UUID | None = None
) -> list[str]:
    """ANALYZE the tables of `inserted` whose statistics the inserts left stale (in the
    caller's transaction on `driver`, which sees `tenant`'s rows); the tables analyzed."""
    names = sorted(inserted)
    qualified = {name: f'"{schema}"."{name}"' for name in names}
    estimates = dict(await driver.fetch(_ESTIMATES, [qualified[n] for n in names]))
    owned = _tenant_tables()
    chosen = []
    for name in names:
        estimate = float(estimates.get(name, -1))
        counted = tenant is not None and name in owned and inserted[name] >= MIN_ROWS
        if stale(inserted[name], estimate) or (
            counted
            and tenant is not None
            and stale(inserted[name], estimate, await _tenant_rows(driver, qualified[name], tenant))
        ):
            chosen.append(name)
    for name in chosen:
        await driver.execute(f'SELECT "{schema}".edu_analyze($1::regclass)', qualified[name])
    return chosen


def warn(error: BaseException) -> None:
    """A failed ANALYZE costs only speed until autovacuum analyzes: a warning."""
    log.warning(
        "ANALYZE after a bulk insert failed (%s); autovacuum will catch up", type(error).__name__
    )


__all__ = ["MIN_ROWS", "MIN_SHARE", "analyze_stale", "bulk_inserts", "stale", "warn"]
