"""Read replicas: one pool each, what was last seen of each, and the order a read tries them.

A replica is a PostgreSQL hot standby of the primary (same roles, same EDU_RLS_KEY). No
background task watches them: the reads do (`routing.py`). A read probes a replica on the
connection it is about to use when the last look is older than `retry` seconds, or when the
read carries a consistency token the replica was not yet seen to have replayed; otherwise
it uses the replica without a round trip of its own. What a probe or a failure shows is
kept here:

- `ok`: in recovery (a standby), lag within `max_lag`;
- `down`: a connection could not be made or died (its pool is emptied);
- `lagging`: it has not replayed a position the primary was seen at more than `max_lag`
  ago (this process's commits, and the primary's flushed position, looked at by a read at
  most every `retry` seconds: so the writes of other instances count too); or it has had
  no WAL receiver (cut off from the primary) for more than `max_lag`;
- `promoted`: no longer in recovery (it may have diverged from the primary).

A skipped replica is tried again `retry` seconds after it was last looked at, so it comes
back by itself. Every routing decision is counted (`reads`), by target and reason.
"""

from __future__ import annotations

import collections
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

#: Positions of the primary kept (`ReplicaSet._seen`): with one per `max_lag / 8`, 8 times
#: the lag bound of history.
_SEEN = 64
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
        #: positions of the primary, each with the monotonic time it was first seen, oldest
        #: first; a position seen within `_grain` of the last one replaces it (keeping the
        #: older time: a replica's staleness is over-, never under-estimated)
        self._seen: collections.deque[tuple[ConsistencyToken, float]] = collections.deque(
            maxlen=_SEEN
        )
        self._grain = max_lag / 8
        #: monotonic time a read last looked at the primary's position
        self.primary_checked = -math.inf
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

    @property
    def latest(self) -> ConsistencyToken | None:
        """The newest position of the primary this process has seen (commits, looks)."""
        return self._seen[-1][0] if self._seen else None

    def primary_due(self) -> bool:
        """Whether a read should look at the primary's position (at most every `retry`)."""
        return self.clock() - self.primary_checked >= self.retry

    def observe(self, replica: Replica, probe: Probe) -> Health:
        before = replica.health
        replica.checked = now = self.clock()
        replica.replayed = probe.replayed
        replica.lag = self._unseen_for(replica, probe, now)
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
        """The replica's lag: the age of the oldest position of the primary it has not
        replayed, or how long it has had no WAL receiver (0: neither). Not the standby's
        own estimate (the age of its last replayed transaction), which counts an idle
        primary's quiet time as lag."""
        if probe.streaming:
            replica.cut_since = None
        elif replica.cut_since is None:
            replica.cut_since = now
        cut = 0.0 if replica.cut_since is None else now - replica.cut_since
        for position, seen in self._seen:
            if probe.replayed is None or position > probe.replayed:
                return max(cut, now - seen)
        return cut

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
        """This process's commit reached `token` (now)."""
        self._saw(token, self.clock())

    def looked(self, position: ConsistencyToken, previous_look: float) -> None:
        """A look at the primary found it at `position`. WAL beyond what was known may have
        been written by another instance any time since then: a new position counts as
        seen at the previous look (or the last commit, if later), so a replica cut off for
        longer than `max_lag` lags even when this process only reads."""
        known = max(previous_look, self._seen[-1][1] if self._seen else -math.inf)
        self._saw(position, known if known > -math.inf else self.clock())

    def _saw(self, position: ConsistencyToken, at: float) -> None:
        if self.latest is not None and position <= self.latest:
            return
        if self._seen and at - self._seen[-1][1] < self._grain:
            self._seen[-1] = (position, self._seen[-1][1])
        else:
            self._seen.append((position, at))

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
