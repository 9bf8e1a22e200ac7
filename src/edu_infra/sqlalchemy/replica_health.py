"""What `edu health` says of the read replicas: each one probed once, now.

A replica that is down, lagging or no standby (promoted, or the primary's own address) does
not make the service unready: reads skip it and go to the primary. It is reported so that an
operator sees it before the primary carries every read.
"""

from __future__ import annotations

import math

from edu_infra.sqlalchemy.engine import Database
from edu_infra.sqlalchemy.replicas import Health, Replica
from edu_infra.sqlalchemy.routing import ReadRoute

_MEANING = {
    Health.OK: "ok",
    Health.DOWN: "DOWN (reads go to the primary)",
    Health.LAGGING: "LAGGING beyond EDU_DATABASE_REPLICA_MAX_LAG (reads go to the primary)",
    Health.PROMOTED: "PROMOTED: not a standby (reads skip it; check EDU_DATABASE_REPLICA_URLS)",
    Health.BUSY: "BUSY (no pooled connection came free)",
    Health.UNKNOWN: "UNKNOWN",
}
_CUT_OFF = (
    "NO WAL RECEIVER: cut off from its primary (reads skip it once that lasts longer than"
    " EDU_DATABASE_REPLICA_MAX_LAG)"
)


async def replica_lines(database: Database) -> list[str]:
    """One line per configured replica (none without replicas)."""
    replicas = database.replicas
    if replicas is None:
        return []
    lines = []
    for replica in replicas.replicas:
        health = await _probe_now(database, replica)
        lag = f", lag {replica.lag:.3f} s" if health is Health.OK else ""
        cut = replica.cut_since is not None and health is Health.OK
        meaning = _CUT_OFF if cut else _MEANING[health]
        lines.append(f"read replica {replica.name} ({replica.address}): {meaning}{lag}")
    return lines


async def _probe_now(database: Database, replica: Replica) -> Health:
    assert database.replicas is not None
    replica.checked = -math.inf  # whatever was seen before: look now
    route = ReadRoute(database, database.replicas, None)
    return await route.probe(replica)
