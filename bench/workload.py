"""What every contender is asked to do, with the same inputs for all of them."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from dataset import BenchDatabase

PAGE_SKIP, PAGE_LIMIT = 40, 20
BULK_SIZE = 10_000
CONCURRENCY, POOL_SIZE = 20, 10
CONTENDERS = ("edu", "limit", "raw_tx", "raw", "sqlalchemy", "advanced_alchemy")


@dataclass
class Workload:
    """Shared inputs: the tenant read from, ids to cycle through, rows to consume."""

    db: BenchDatabase
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    keyset_after: tuple[datetime, uuid.UUID] | None = None
    keyset_cursor: str | None = None
    _serial: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.org = self.db.orgs[0]
        self.members = self.db.users[self.org]
        self._cycle = itertools.cycle(self.members)
        self.register_org = self.db.orgs[1]
        self.bulk_org = self.db.orgs[2]
        deleting = self.db.orgs[3 : 3 + len(CONTENDERS)]  # one organization per contender
        self.delete_orgs = dict(zip(CONTENDERS, deleting, strict=True))
        self._delete_pools = {
            name: iter(self.db.users[org]) for name, org in self.delete_orgs.items()
        }
        half = len(self.members) // 2
        self._miss_pools = {
            "edu": iter(self.members[1:half]),
            "raw": iter(self.members[half:]),
        }

    @property
    def now(self) -> datetime:
        return datetime.now(UTC)

    @property
    def thirty_days_ago(self) -> datetime:
        return self.now - timedelta(days=30)

    def next_member(self) -> tuple[uuid.UUID, str]:
        return next(self._cycle)

    def next_victim(self, contender: str) -> uuid.UUID:
        return next(self._delete_pools[contender])[0]

    def next_miss(self, contender: str) -> uuid.UUID:
        """A user id this contender has never cached (each is used once)."""
        return next(self._miss_pools[contender])[0]

    def serial(self) -> int:
        return next(self._serial)

    def new_user(self, tag: str) -> dict[str, Any]:
        """Input of one registration/bulk row (unique email and username)."""
        n = self.serial()
        return {
            "email": f"n{n}.{tag}.{self.run}@bench.example",
            "username": f"n{n}.{tag}.{self.run}",
            "full_name": f"New User {n}",
            "role": "student",
            "status": "pending",
        }

    def bulk_input(self, tag: str) -> list[dict[str, Any]]:
        return [self.new_user(tag) for _ in range(BULK_SIZE)]
