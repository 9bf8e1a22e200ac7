"""Reads on a read replica vs the primary, and the mixed workload with one replica.

    .venv/bin/python bench/replica.py     # `make bench` runs it after bench/run.py

Starts a primary and a streaming hot standby of its own (`tests/replica/cluster.py`: Debian's
server binaries on free loopback ports, independent of the server on 5432), loads the
benchmark dataset (`bench/dataset.py`) on the primary as its owner and waits for the standby
to replay it. edu-core connects as the application role (row-level security on), pools of
10 connections (no overflow) on each server. Then:

- reads: read-only units of work of one client (get by id, a page of 20, statistics), on the
  primary (no replicas configured: BEGIN READ ONLY there) and on the replica; the median
  ops/s of five interleaved repeats;
- mixed: a closed loop of 50 clients on the tail-latency mix (60% get by id, 20% a page, 15%
  updates, 5% registrations) through `EduCore`, on the primary alone and with one replica,
  their segments alternating. Each client carries its consistency token from one request
  to the next (as a web client sending back the `Edu-Consistency` header does), so every
  read sees that client's own writes. Throughput, p50 and p99 of the operations.

Primary, standby and benchmark share this machine's cores: the replica adds no capacity
here, so the figures show what routing costs, not what a second server gains. Writes
bench/results/replica.json.
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import asyncpg  # noqa: E402
import dataset  # noqa: E402
from closed_loop import Call, NewClient, closed_loop  # noqa: E402

from edu_domain.model import User, UserStatus  # noqa: E402
from edu_domain.query import Query  # noqa: E402
from edu_domain.services import Deps, EduCore, NewUser, Scope  # noqa: E402
from edu_infra.consistency import read_your_writes  # noqa: E402
from edu_infra.memory import FastHasher  # noqa: E402
from edu_infra.sqlalchemy import Database, DatabaseSettings, SqlUnitOfWorkFactory  # noqa: E402
from edu_infra.system import SecretTokenGenerator, SystemClock, Uuid7Generator  # noqa: E402
from tests.replica.cluster import Cluster, primary_and_standby  # noqa: E402

RESULTS = HERE / "results" / "replica.json"
POOL = 10
CLIENTS, SECONDS, SEGMENTS = 50, 8.0, 4
MIX = (("get_by_id", 0.60), ("find_page", 0.20), ("update", 0.15), ("register", 0.05))
Op = Callable[[], Awaitable[object]]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Side:
    """edu-core over the primary alone, or over the primary and its replica."""

    def __init__(self, db: dataset.BenchDatabase, replica_url: str | None) -> None:
        self.database = Database(
            DatabaseSettings(
                url=db.app_url,
                pool_size=POOL,
                max_overflow=0,
                rls_key=dataset.RLS_KEY,
                replica_urls=(replica_url,) if replica_url else (),
            )
        )
        clock = SystemClock()
        self.factory = SqlUnitOfWorkFactory(self.database, clock=clock)
        self.core = EduCore(
            Deps(
                uow=self.factory,
                clock=clock,
                ids=Uuid7Generator(),
                tokens=SecretTokenGenerator(),
                hasher=FastHasher(),
            )
        )
        self.org = db.orgs[0]
        self.scope = Scope.system(self.org)
        self.members = [uid for uid, _ in db.users[self.org]]
        self.register_org = db.orgs[1]
        self.page = (
            Query.where(status=UserStatus.ACTIVE).order_by("-created_at", "-id").page(40, 20)
        )
        self._serial = 0

    def member(self, rng: random.Random) -> Any:
        return self.members[rng.randrange(len(self.members))]

    # ------------------------------------------------------------------ reads, one client

    async def ro_get_by_id(self, rng: random.Random) -> None:
        async with self.factory(tenant=self.org, read_only=True) as uow:
            assert await uow.get(User, self.member(rng)) is not None

    async def ro_find_page(self, rng: random.Random) -> None:
        async with self.factory(tenant=self.org, read_only=True) as uow:
            assert len((await uow.find(User, self.page)).items) == 20

    async def ro_statistics(self, rng: random.Random) -> None:
        assert (await self.core.users.statistics(self.scope)).total > 0

    # ------------------------------------------------------------------ the mix

    async def get_by_id(self, rng: random.Random) -> None:
        await self.core.users.get(self.scope, self.member(rng))

    async def find_page(self, rng: random.Random) -> None:
        await self.core.users.find(self.scope, self.page)

    async def update(self, rng: random.Random) -> None:
        self._serial += 1
        await self.core.users.update(
            self.scope, self.member(rng), {"full_name": f"Renamed {self._serial}"}
        )

    async def register(self, rng: random.Random) -> None:
        self._serial += 1
        name = f"r{self._serial}.{id(self) % 10_000}.{rng.randrange(10**9)}"
        await self.core.users.register(
            Scope.system(self.register_org),
            NewUser(email=f"{name}@example.org", username=name, password="x" * 12),
            send_verification=False,
        )

    def reads(self) -> Counter[str]:
        replicas = self.database.replicas
        return (
            Counter()
            if replicas is None
            else Counter({f"{t}/{r}": n for (t, r), n in replicas.reads.items()})
        )


async def interleaved(
    ops: dict[str, Op], repeats: int = 5, window: float = 0.25
) -> dict[str, float]:
    """Median ops/s of `repeats` windows per contender, the contenders taking turns."""
    for op in ops.values():
        deadline = time.perf_counter() + 0.2
        while time.perf_counter() < deadline:
            await op()
    rates: dict[str, list[float]] = {name: [] for name in ops}
    for _ in range(repeats):
        for name, op in ops.items():
            gc.collect()
            done, started = 0, time.perf_counter()
            while (now := time.perf_counter()) < started + window:
                await op()
                done += 1
            rates[name].append(done / (now - started))
    return {name: round(statistics.median(values), 1) for name, values in rates.items()}


def requests(side: Side) -> NewClient:
    """A client of `side` that sends its last consistency token back with its next request
    (as a web client returning the `Edu-Consistency` header does)."""

    def new_client() -> Call:
        token = None

        async def call(name: str, rng: random.Random) -> None:
            nonlocal token
            with read_your_writes(token) as chain:  # one request, the token sent back
                await getattr(side, name)(rng)
            token = chain.token

        return call

    return new_client


async def mixed(sides: dict[str, Side]) -> dict[str, dict[str, Any]]:
    before = {name: side.reads() for name, side in sides.items()}
    out = await closed_loop(
        {name: requests(side) for name, side in sides.items()},
        MIX,
        clients=CLIENTS,
        seconds=SECONDS,
        segments=SEGMENTS,
    )
    for name, side in sides.items():
        out[name]["reads"] = dict(side.reads() - before[name])
    return out


async def caught_up(cluster: Cluster, name: str) -> None:
    # the WAL position is the cluster's; `name` may not exist on the standby yet
    primary = await asyncpg.connect(cluster.dsn(cluster.primary_port, "postgres"))
    standby = await asyncpg.connect(cluster.dsn(cluster.standby_port, "postgres"))
    try:
        lsn = await primary.fetchval("SELECT pg_current_wal_insert_lsn()")
        for _ in range(1200):
            if await standby.fetchval("SELECT pg_last_wal_replay_lsn() >= $1", lsn):
                return
            await asyncio.sleep(0.05)
        raise TimeoutError("the standby did not catch up in 60 s")
    finally:
        await primary.close()
        await standby.close()


async def run(cluster: Cluster) -> dict[str, Any]:
    admin = cluster.url(cluster.primary_port, "postgres")
    db = await dataset.create(admin)
    log(f"loaded {await dataset.load(db)}; waiting for the standby ...")
    await caught_up(cluster, db.name)
    replica_url = cluster.url(cluster.standby_port, db.name, dataset.APP_ROLE)
    primary, replicated = Side(db, None), Side(db, replica_url)
    try:
        reads: dict[str, dict[str, float]] = {}
        for op in ("ro_get_by_id", "ro_find_page", "ro_statistics"):
            rng = random.Random(7)
            reads[op] = await interleaved(
                {
                    "primary": lambda op=op, rng=rng: getattr(primary, op)(rng),
                    "replica": lambda op=op, rng=rng: getattr(replicated, op)(rng),
                }
            )
            log(f"  {op:<14} {reads[op]}")
        loop = await mixed({"primary only": primary, "1 replica": replicated})
        for name, row in loop.items():
            log(f"  mixed, {name}: {row}")
        return {"reads_ops_per_second": reads, "mixed": loop}
    finally:
        await primary.database.dispose()
        await replicated.database.dispose()


def table(results: dict[str, Any]) -> str:
    lines = [
        "| read-only unit of work | primary ops/s | replica ops/s | replica/primary |",
        "|---|---|---|---|",
    ]
    for op, row in results["reads_ops_per_second"].items():
        ratio = row["replica"] / row["primary"]
        lines.append(f"| {op} | {row['primary']:,.0f} | {row['replica']:,.0f} | {ratio:.2f}x |")
    lines += [
        "",
        f"| mixed, {CLIENTS} clients | ops/s | p50 ms | p99 ms | max ms | errors | reads went to |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in results["mixed"].items():
        went = ", ".join(f"{k} {v}" for k, v in sorted(row["reads"].items())) or "primary"
        lines.append(
            f"| {name} | {row['ops_per_second']:,.0f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f}"
            f" | {row['max_ms']:.1f} | {row['errors']} | {went} |"
        )
    return "\n".join(lines)


def main() -> int:
    started = time.perf_counter()
    log("read replicas: starting a primary and a hot standby ...")
    with primary_and_standby() as cluster:
        results = asyncio.run(run(cluster))
    results["seconds"] = round(time.perf_counter() - started, 1)
    print("\nRead replicas (bench/replica.py)\n")
    print(table(results))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    log(f"wrote {RESULTS.relative_to(HERE.parent)} in {results['seconds']:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
