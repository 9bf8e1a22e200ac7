"""Read replicas: one pool each, what was last seen of each, and the order a read tries them.

A replica is a PostgreSQL hot standby of the primary (same roles, same EDU_RLS_KEY). No
background task watches them: the reads do (`routing.py`). A read probes a replica on the
connection it is about to use when the last look is older than `retry` seconds, or when the
read carries a consistency token the replica was not yet seen to have replayed; otherwise
it uses the replica without a round trip of its own. What a probe or a failure shows is
kept here:

- `ok`: in recovery (a standby), lag within `max_lag`;
- `down`: a connection could not be made or died (its pool is emptied);
- `lagging`: the replica's own estimate of its lag exceeds `max_lag`; or it has not
  replayed a commit this process saw more than `max_lag` ago; or it has had no WAL
  receiver (cut off from the primary: it then says it replayed all it received) for more
  than `max_lag`;
- `promoted`: no longer in recovery (it may have diverged from the primary).

A skipped replica is tried again `retry` seconds after it was last looked at, so it comes
back by itself. Every routing decision is counted (`reads`), by target and reason.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import Any

from attrs import define, frozen
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from edu_infra.consistency import ConsistencyToken

log = logging.getLogger("edu_infra")

#: How a read picks among usable replicas.
POLICIES = ("round_robin", "least_busy")
PRIMARY = "primary"


class Health(StrEnum):
    UNKNOWN = "unknown"
    OK = "ok"
    DOWN = "down"
    LAGGING = "lagging"
    PROMOTED = "promoted"
    #: not a state a replica keeps: its pool had no connection free in `pool_timeout`
    BUSY = "busy"


class Reason(StrEnum):
    """Why a read-only unit of work reads where it does."""

    REPLICA = "replica"  # a replica, at once
    WAITED = "waited"  # a replica, after waiting for it to replay the token
    BEHIND_TOKEN = "behind_token"  # noqa: S105 - primary: no replica replayed the token within the bound
    DOWN = "down"  # primary: every replica tried was down
    LAGGING = "lagging"  # primary: every replica tried lags beyond the bound
    PROMOTED = "promoted"  # primary: every replica tried is no standby any more
    BUSY = "busy"  # primary: no connection came free in the replica's pool in time
    UNCHECKED = "unchecked"  # primary: another read is checking the replica (after a failure)
    PRIMARY_REQUIRED = "primary_required"  # primary: asked for (a cache fill, an unknown write)
    FAILOVER = "failover"  # primary: the replica was lost in the middle of the unit of work


@frozen
class Probe:
    """What a replica said about itself."""

    in_recovery: bool
    replayed: ConsistencyToken | None
    lag: float
    #: a WAL receiver is running (False: the standby is cut off from its primary)
    streaming: bool = True


@define
class Replica:
    """One replica: its engine (and pool), and what was last seen of it."""

    name: str
    address: str
    engine: AsyncEngine
    health: Health = Health.UNKNOWN
    replayed: ConsistencyToken | None = None
    lag: float = 0.0
    #: monotonic time of the last probe or failure
    checked: float = -math.inf
    #: a read is looking at this replica after a failure: the others pass it by meanwhile
    #: (one read, not all of them, waits for a connection to a server that may be gone)
    probing: bool = False
    #: monotonic time its pool was last emptied
    emptied: float = -math.inf
    #: monotonic time a probe first saw it without a WAL receiver (None: streaming)
    cut_since: float | None = None
    #: reads holding one of its connections while they wait for it to replay their token
    waiting: int = 0

    def in_use(self) -> int:
        pool = self.engine.pool
        return pool.checkedout() if isinstance(pool, QueuePool) else 0


class ReplicaSet:
    """The replicas of one `Database`, the routing policy and its counters."""

    def __init__(
        self,
        replicas: Sequence[Replica],
        *,
        policy: str,
        max_lag: float,
        wait: float,
        retry: float,
        max_waiting: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown replica policy {policy!r}")
        self.replicas = tuple(replicas)
        self.policy = policy
        self.max_lag = max_lag
        self.wait = wait
        self.retry = retry
        self.clock = clock
        #: routing decisions: (target, reason) -> count; target is a replica name or "primary"
        self.reads: Counter[tuple[str, str]] = Counter()
        #: the newest commit position this process has seen (every commit's token)
        self.latest: ConsistencyToken | None = None
        #: monotonic time `latest` was recorded
        self.latest_at = -math.inf
        #: reads that may wait on one replica at once (a far-ahead, perhaps forged, token
        #: holds a connection for `wait`: the rest of its pool stays for other reads)
        self.max_waiting = max_waiting
        self._turn = itertools.count()

    # ------------------------------------------------------------------ choosing

    def usable(self, replica: Replica) -> bool:
        """Healthy, or due for another look that no other read is taking."""
        if replica.health is Health.OK:
            return True
        if replica.probing:
            return False
        return replica.health is Health.UNKNOWN or self.clock() - replica.checked >= self.retry

    def needs_probe(self, replica: Replica, token: ConsistencyToken | None) -> bool:
        """Whether a read must ask the replica before using it."""
        if replica.health is not Health.OK or self.clock() - replica.checked >= self.retry:
            return True
        return token is not None and (replica.replayed is None or replica.replayed < token)

    def order(self, exclude: frozenset[str] = frozenset()) -> list[Replica]:
        """The replicas a read tries, first choice first: usable ones, by the policy."""
        start = next(self._turn) % len(self.replicas)
        turn = [*self.replicas[start:], *self.replicas[:start]]
        candidates = [r for r in turn if r.name not in exclude and self.usable(r)]
        if self.policy == "least_busy":
            candidates.sort(key=Replica.in_use)  # stable: ties keep the round-robin order
        return candidates

    def skipped(self, exclude: frozenset[str] = frozenset()) -> Health | None:
        """Why replicas were passed over when none was usable (the first one's state)."""
        for replica in self.replicas:
            if replica.name not in exclude and not self.usable(replica):
                return replica.health
        return None

    # ------------------------------------------------------------------ what was seen

    def observe(self, replica: Replica, probe: Probe) -> Health:
        before = replica.health
        replica.checked = now = self.clock()
        replica.replayed = probe.replayed
        replica.lag = max(probe.lag, self._unseen_for(replica, probe, now))
        if not probe.in_recovery:
            replica.health = Health.PROMOTED
        elif replica.lag > self.max_lag:
            replica.health = Health.LAGGING
        else:
            replica.health = Health.OK
        if replica.health is not before:
            log.info("read replica %s is %s", replica.name, replica.health.value)
        return replica.health

    def _unseen_for(self, replica: Replica, probe: Probe, now: float) -> float:
        """A lower bound of the lag the standby's estimate misses: the age of a commit this
        process saw that it has not replayed, or how long it has had no WAL receiver."""
        if probe.streaming:
            replica.cut_since = None
        elif replica.cut_since is None:
            replica.cut_since = now
        cut = 0.0 if replica.cut_since is None else now - replica.cut_since
        behind = self.latest is not None and (
            probe.replayed is None or probe.replayed < self.latest
        )
        return max(cut, now - self.latest_at if behind else 0.0)

    def replayed(self, replica: Replica, position: ConsistencyToken | None) -> None:
        """A newer replay position seen while waiting for a token."""
        if position is not None and (replica.replayed is None or position > replica.replayed):
            replica.replayed = position

    async def failed(self, replica: Replica, *, down: bool) -> None:
        """A connection to `replica` failed: it is down (skipped until `retry` passes), or
        only suspect (looked at again by the next read). Either way its pool is emptied,
        so no read meets the dead connections of a restarted server."""
        before = replica.health
        replica.health = Health.DOWN if down else Health.UNKNOWN
        replica.checked = now = self.clock()
        if before is not replica.health:
            log.warning("read replica %s is %s", replica.name, replica.health.value)
        if now - replica.emptied < self.retry and before is replica.health:
            return  # emptied moments ago (many reads met the same failure)
        replica.emptied = now
        try:
            await replica.engine.dispose()
        except Exception:  # closing dead connections: nothing more to do
            log.debug("emptying the pool of replica %s failed", replica.name, exc_info=True)

    def committed(self, token: ConsistencyToken) -> None:
        if self.latest is None or token > self.latest:
            self.latest, self.latest_at = token, self.clock()

    def count(self, target: str, reason: Reason) -> None:
        self.reads[(target, reason.value)] += 1

    # ------------------------------------------------------------------ operators

    def status(self) -> list[Mapping[str, Any]]:
        """Each replica as last seen (for health endpoints and troubleshooting)."""
        now = self.clock()
        return [
            {
                "name": r.name,
                "address": r.address,
                "health": r.health.value,
                "replayed": None if r.replayed is None else str(r.replayed),
                "lag_seconds": round(r.lag, 3),
                "checked_seconds_ago": None
                if r.checked == -math.inf
                else round(now - r.checked, 3),
                "in_use": r.in_use(),
            }
            for r in self.replicas
        ]

    async def dispose(self) -> None:
        for replica in self.replicas:
            await replica.engine.dispose()


__all__ = ["POLICIES", "PRIMARY", "Health", "Probe", "Reason", "Replica", "ReplicaSet"]
