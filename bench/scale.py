"""Scale curves: get / find page / count / statistics as the data grows, edu-core and `limit`.

    make bench-scale          # or: .venv/bin/python bench/scale.py   (about 4 minutes)

Two scenarios, each in a database of its own (created, migrated, dropped at the end):

- sizes: one organization after another with 1,000, 10,000 and 100,000 users, each loaded
  through the library (`uow.import_rows`, else seed-style `add_all`: the path an application
  takes), measured right after the import and again after a manual `ANALYZE users`;
- tenants: 1,000 users in the measured organization while the table holds 99,000 more over
  9 organizations or over 999 (background loaded by COPY as the owner, then ANALYZEd), the
  measured organization imported through the library last, measured after the import and
  after ANALYZE.

Autovacuum is switched off on `users` in these databases, so "right after the import" is
what the library leaves behind (its own ANALYZE after bulk work, if it has one) and not a
race with the autovacuum daemon. For each phase: ops/s of both contenders (paired repeats,
`harness.py`), their ratio, the planner's row estimate for the table, and the plan of a get
by id. Writes bench/results/scale.json.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import asyncpg  # noqa: E402
import dataset  # noqa: E402
from harness import Plan, measure_paired  # noqa: E402
from limit_side import Limit  # noqa: E402
from run import machine  # noqa: E402
from workload import PAGE_LIMIT, PAGE_SKIP  # noqa: E402

from edu_domain.model import User, UserStatus  # noqa: E402
from edu_domain.query import Query  # noqa: E402
from edu_domain.services import Deps, EduCore, Scope  # noqa: E402
from edu_infra.memory import FastHasher  # noqa: E402
from edu_infra.sqlalchemy import Database, DatabaseSettings, SqlUnitOfWorkFactory  # noqa: E402
from edu_infra.sqlalchemy.uow import SqlUnitOfWork  # noqa: E402
from edu_infra.system import SecretTokenGenerator, SystemClock, Uuid7Generator  # noqa: E402

RESULTS = HERE / "results" / "scale.json"
SIZES = (1_000, 10_000, 100_000)
TENANTS = (10, 1_000)
TENANT_USERS, BACKGROUND_USERS = 1_000, 99_000
PLAN = Plan(window=0.1, min_repeats=4, max_repeats=12, cap=4.0)
OPS = ("get_by_id", "find_page", "count", "statistics")
STATUSES = ("active", "active", "active", "pending", "suspended")
ROLES = ("student", "student", "student", "teacher", "staff")
HASH = "fast$v2$1$" + "0" * 64


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Tenant:
    """The measured organization, as `Limit` reads it (its `Workload` interface)."""

    def __init__(self, org: uuid.UUID, members: list[uuid.UUID]) -> None:
        self.org = org
        self._cycle = itertools.cycle(members)
        self.keyset_after: tuple[datetime, uuid.UUID] | None = None

    @property
    def now(self) -> datetime:
        return datetime.now(UTC)

    @property
    def thirty_days_ago(self) -> datetime:
        return self.now - timedelta(days=30)

    def next_member(self) -> tuple[uuid.UUID, str]:
        return next(self._cycle), ""


def user_rows(org: uuid.UUID, count: int, tag: str) -> list[dict[str, Any]]:
    return [
        {
            "organization_id": org,
            "id": uuid.uuid4(),
            "email": f"s{i}.{tag}@scale.example",
            "username": f"s{i}.{tag}",
            "hashed_password": HASH,
            "full_name": f"Scale User {i}",
            "role": ROLES[i % len(ROLES)],
            "status": STATUSES[i % len(STATUSES)],
        }
        for i in range(count)
    ]


class Scenario:
    """One database: organizations by COPY, users through edu-core, both contenders."""

    def __init__(self, db: dataset.BenchDatabase) -> None:
        self.db = db
        self.database = Database(
            DatabaseSettings(url=db.app_url, pool_size=2, max_overflow=0, rls_key=dataset.RLS_KEY)
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
        self.verb = "import_rows" if hasattr(SqlUnitOfWork, "import_rows") else "add_all"

    async def owner(self, sql: str, *args: Any) -> Any:
        conn = await asyncpg.connect(self.db.owner_dsn)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    async def organizations(self, count: int) -> list[uuid.UUID]:
        orgs = [uuid.uuid4() for _ in range(count)]
        now = datetime.now(UTC)
        conn = await asyncpg.connect(self.db.owner_dsn)
        try:
            await conn.copy_records_to_table(
                "organizations",
                records=[
                    (o, f"Org {o.hex[:8]}", f"org-{o.hex}", "active", now, None, now, None, None, None, 1)
                    for o in orgs
                ],
                columns=[
                    "id", "name", "slug", "status", "created_at", "created_by", "updated_at",
                    "updated_by", "deleted_at", "deleted_by", "version",
                ],
            )  # fmt: skip
        finally:
            await conn.close()
        return orgs

    async def import_users(self, org: uuid.UUID, rows: list[dict[str, Any]]) -> float:
        """The rows through the library in one unit of work; seconds taken."""
        started = time.perf_counter()
        async with self.factory(tenant=org) as uow:
            if self.verb == "import_rows":
                await uow.import_rows(User, rows)  # type: ignore[attr-defined]
            else:
                for start in range(0, len(rows), 10_000):
                    await uow.add_all(User(**row) for row in rows[start : start + 10_000])
            await uow.commit()
        return time.perf_counter() - started

    async def background(self, orgs: list[uuid.UUID], per_org: int) -> None:
        """Other tenants' users by COPY as the owner, then ANALYZE (settled data)."""
        now = datetime.now(UTC)
        records = []
        for k, org in enumerate(orgs):
            for row in user_rows(org, per_org, f"b{k}"):
                records.append(
                    (
                        *row.values(),
                        False,
                        None,
                        None,
                        0,
                        None,
                        None,
                        now,
                        None,
                        now,
                        None,
                        None,
                        None,
                        1,
                    )
                )
        conn = await asyncpg.connect(self.db.owner_dsn)
        try:
            await conn.copy_records_to_table(
                "users",
                records=records,
                columns=[
                    *user_rows(orgs[0], 1, "x")[0], "email_verified", "email_verified_at",
                    "last_login_at", "failed_login_count", "locked_until", "password_changed_at",
                    "created_at", "created_by", "updated_at", "updated_by", "deleted_at",
                    "deleted_by", "version",
                ],
            )  # fmt: skip
            await conn.execute("ANALYZE users")
        finally:
            await conn.close()

    async def phase(self, org: uuid.UUID, members: list[uuid.UUID]) -> dict[str, Any]:
        """Both contenders on the four reads of `org`, plus what the planner believes."""
        tenant = Tenant(org, members)
        limit = Limit(tenant, self.db.app_dsn, pool_size=2)  # type: ignore[arg-type]
        await limit.start()
        scope = Scope.system(org)
        page = (
            Query.where(status=UserStatus.ACTIVE)
            .order_by("-created_at", "-id")
            .page(PAGE_SKIP, PAGE_LIMIT)
        )
        active = Query.where(status=UserStatus.ACTIVE)
        cycle = itertools.cycle(members)

        async def get_by_id() -> object:
            async with self.factory(tenant=org) as uow:
                return await uow.get(User, next(cycle))

        edu = {
            "get_by_id": get_by_id,
            "find_page": lambda: self.core.users.find(scope, page),
            "count": lambda: self.core.users.count(scope, active),
            "statistics": lambda: self.core.users.statistics(scope),
        }
        out: dict[str, Any] = {"planner": await self.planner(org, members[0])}
        try:
            for op in OPS:
                row = await measure_paired(
                    {"edu": edu[op], "limit": getattr(limit, op)}, PLAN, watch=("limit",)
                )
                ratio = row.ratios["limit"]
                out[op] = {
                    "edu": round(row.rate("edu"), 1),
                    "limit": round(row.rate("limit"), 1),
                    "ratio": ratio.as_json(),
                }
                log(
                    f"    {op:<11} edu {row.rate('edu'):>8,.0f}  limit {row.rate('limit'):>8,.0f}"
                    f"  {ratio.median:.2f}x [{ratio.q1:.2f}-{ratio.q3:.2f}]"
                )
        finally:
            await limit.stop()
        return out

    async def planner(self, org: uuid.UUID, uid: uuid.UUID) -> dict[str, Any]:
        """The table's row estimate and the plan of a get by id (as the owner: no RLS)."""
        stats = await self.owner(
            "SELECT c.reltuples::bigint, s.n_live_tup, s.last_analyze IS NOT NULL,"
            " s.last_autoanalyze IS NOT NULL FROM pg_class c"
            " JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.relname = 'users'"
        )
        plan = await self.owner(  # literals: EXPLAIN takes no bind parameters
            f"EXPLAIN SELECT * FROM users WHERE organization_id = '{org}'"
            f" AND deleted_at IS NULL AND id = '{uid}'"
        )
        estimate, live, analyzed, autoanalyzed = stats[0]
        return {
            "reltuples": estimate,
            "n_live_tup": live,
            "analyzed": analyzed,
            "autoanalyzed": autoanalyzed,
            "get_plan": plan[0][0].strip(),
        }

    async def measure(self, org: uuid.UUID, rows: list[dict[str, Any]]) -> dict[str, Any]:
        members = [row["id"] for row in rows]
        seconds = await self.import_users(org, rows)
        log(f"  imported {len(rows):,} users by {self.verb} in {seconds:.1f}s; after the import:")
        after_import = await self.phase(org, members)
        await self.owner("ANALYZE users")
        log("  after ANALYZE:")
        after_analyze = await self.phase(org, members)
        return {
            "import_seconds": round(seconds, 2),
            "after_import": after_import,
            "after_analyze": after_analyze,
        }


async def scenario(name: str) -> tuple[Scenario, dataset.BenchDatabase]:
    db = await dataset.create()
    s = Scenario(db)
    await s.owner("ALTER TABLE users SET (autovacuum_enabled = off)")
    log(f"{name}: database {db.name}")
    return s, db


async def sizes() -> dict[str, Any]:
    s, db = await scenario("sizes")
    out: dict[str, Any] = {"verb": s.verb}
    try:
        orgs = await s.organizations(len(SIZES))
        for org, size in zip(orgs, SIZES, strict=True):
            log(f" {size:,} users in one organization")
            out[str(size)] = await s.measure(org, user_rows(org, size, f"z{size}"))
    finally:
        await s.database.dispose()
        await dataset.drop(db)
    return out


async def tenants() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for count in TENANTS:
        s, db = await scenario(f"tenants {count}")
        try:
            measured, *others = await s.organizations(count)
            await s.background(others, BACKGROUND_USERS // len(others))
            log(f" {TENANT_USERS:,} users, {count:,} organizations, {BACKGROUND_USERS:,} others")
            out[str(count)] = {
                "verb": s.verb,
                **await s.measure(measured, user_rows(measured, TENANT_USERS, "m")),
            }
        finally:
            await s.database.dispose()
            await dataset.drop(db)
    return out


def table(results: dict[str, Any]) -> str:
    lines = [
        "| data | phase | " + " | ".join(f"{op} edu / limit (ratio)" for op in OPS) + " |",
        "|---|---|" + "---|" * len(OPS),
    ]
    rows = [(f"{k} users", v) for k, v in results["sizes"].items() if k != "verb"]
    rows += [(f"1,000 users, {k} orgs", v) for k, v in results["tenants"].items()]
    for label, data in rows:
        for phase in ("after_import", "after_analyze"):
            cells = [
                f"{data[phase][op]['edu']:,.0f} / {data[phase][op]['limit']:,.0f}"
                f" ({data[phase][op]['ratio']['median']:.2f}x)"
                for op in OPS
            ]
            lines.append(f"| {label} | {phase.replace('_', ' ')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


async def main() -> int:
    started = time.perf_counter()
    results = {"sizes": await sizes(), "tenants": await tenants()}
    results["machine"] = await machine()
    results["seconds"] = round(time.perf_counter() - started, 1)
    print(table(results))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    log(f"wrote {RESULTS.relative_to(HERE.parent)} in {results['seconds']:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
