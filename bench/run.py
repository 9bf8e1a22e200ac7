"""edu-core against its `limit`, raw asyncpg, plain SQLAlchemy and advanced-alchemy.

    make bench                     # or: .venv/bin/python bench/run.py [--only get_by_id,count]

One process, one run: creates a dedicated PostgreSQL database, migrates it as owner, loads
50,000 users over 10 organizations by COPY, times every operation for every contender
(repeats pairing the contenders back to back, until the ratios settle: `harness.py`), runs
the tail-latency closed loop (`tail.py`), measures peak memory of a 100,000-row import,
bulk create and streamed read in subprocesses, prints the tables, writes
bench/results/latest.json and drops the database. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import asyncpg  # noqa: E402
import dataset  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402
import report  # noqa: E402
import tail  # noqa: E402
from harness import Plan, Row, measure, measure_paired  # noqa: E402
from workload import BULK_SIZE, CONCURRENCY, CONTENDERS, Workload  # noqa: E402

RESULTS = HERE / "results" / "latest.json"
#: the import row: edu-core's verb, its seed-style add_all, and the asyncpg contenders (the
#: ORM peers take 2 s a repeat here; their add_all figures are in the README's history)
BULK = ("edu", "add_all", "limit", "raw_tx", "raw")

#: (operation, plan, contenders that run it)
OPERATIONS: list[tuple[str, Plan, tuple[str, ...]]] = [
    ("get_by_id", Plan(), CONTENDERS),
    ("get_by_email", Plan(), CONTENDERS),
    ("find_page", Plan(), CONTENDERS),
    ("keyset_page", Plan(), CONTENDERS),
    ("count", Plan(), CONTENDERS),
    ("statistics", Plan(), CONTENDERS),
    ("register", Plan(), CONTENDERS),
    ("update", Plan(), CONTENDERS),
    # 5,000 users to delete per contender
    ("soft_delete", Plan(calls=30, warmup_calls=10, max_repeats=100), CONTENDERS),
    (
        "import_10k",
        Plan(calls=1, warmup_calls=0, per_call=BULK_SIZE, min_repeats=3, max_repeats=6, cap=20),
        BULK,
    ),
    ("concurrent_20", Plan(per_call=CONCURRENCY), CONTENDERS),
    ("cache_hit", Plan(), ("edu", "raw")),
    # 2,500 never cached users per contender
    ("cache_miss", Plan(calls=60, warmup_calls=10, max_repeats=30), ("edu", "raw")),
]

#: the method each contender runs for an operation, where it is not the operation's name
METHOD = {"import_10k": "bulk", "concurrent_20": "concurrent"}
MEMORY_USERS = 100_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def build(w: Workload, db: dataset.BenchDatabase, prefix: str) -> dict[str, Any]:
    from edu_side import Edu
    from limit_side import Limit
    from orm_side import AdvancedAlchemy, PlainSqlAlchemy
    from raw_side import Raw, RawRedis, RawTx

    owner_async = db.owner_url
    edu = Edu(w, db.app_url, dataset.REDIS_URL, prefix + "edu:")
    raw = Raw(w, db.owner_dsn)
    contenders: dict[str, Any] = {
        "edu": edu,
        "limit": Limit(w, db.app_dsn),
        "raw_tx": RawTx(w, db.app_dsn),
        "raw": raw,
        "sqlalchemy": PlainSqlAlchemy(w, owner_async),
        "advanced_alchemy": AdvancedAlchemy(w, owner_async),
    }
    for contender in contenders.values():
        await contender.start()
    redis_raw = RawRedis(w, dataset.REDIS_URL, prefix + "raw:", raw)
    await redis_raw.prime(await edu.cached_user_json())
    await edu.cache_hit()  # the hit key is cached from here on
    return {"contenders": contenders, "cache": {"edu": edu, "raw": redis_raw}}


def methods_of(built: dict[str, Any], op: str, names: tuple[str, ...]) -> dict[str, Any]:
    edu = built["contenders"]["edu"]
    methods: dict[str, Any] = {}
    for name in names:
        if op == "import_10k" and name in ("edu", "add_all"):
            if name == "edu" and edu.can_import:
                methods[name] = edu.import_rows
            elif name == "add_all":
                methods[name] = edu.bulk
            continue
        side = built["cache"][name] if op.startswith("cache_") else built["contenders"][name]
        method = getattr(side, METHOD.get(op, op), None)
        if method is not None:
            methods[name] = method
    return methods


async def run_operations(
    built: dict[str, Any], only: set[str] | None, profile: set[str]
) -> dict[str, Row]:
    rows: dict[str, Row] = {}
    for op, plan, names in OPERATIONS:
        if only and op not in only:
            continue
        methods = methods_of(built, op, names)
        if op in profile and "edu" in methods:
            await profiled(methods["edu"], plan)
        row = await measure_paired(methods, plan, base="edu", watch=report.watched(op))
        rows[op] = row
        shown = "  ".join(f"{n}={row.rate(n):,.0f}" for n in row.rates)
        ratio = "  ".join(
            f"/{n} {row.ratios[n].median:.2f} [{row.ratios[n].q1:.2f}-{row.ratios[n].q3:.2f}]"
            for n in row.watched
            if n in row.ratios
        )
        state = "settled" if row.settled else "capped"
        log(f"  {op:<14} {shown}  {ratio}  ({row.repeats} repeats, {row.seconds:.1f}s, {state})")
    return rows


async def profiled(method: Any, plan: Plan) -> None:
    """Profile edu-core on one operation (pyinstrument), printed to stderr."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0002, async_mode="enabled")
    profiler.start()
    await measure(
        method,
        Plan(min_repeats=3, max_repeats=3, window=1.0) if plan.calls is None else plan,
    )
    profiler.stop()
    log(profiler.output_text(unicode=True, color=False, show_all=False))


def memory_child(kind: str, app_url: str, org: str) -> dict[str, Any]:
    """Run one P7 measurement in a fresh interpreter; its peak RSS is its own."""
    proc = subprocess.run(
        [sys.executable, str(HERE / "memory.py"), kind, app_url, org, str(MEMORY_USERS)],
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )
    if proc.returncode != 0:
        log(proc.stderr[-3000:])
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return data


async def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    conn = await asyncpg.connect(dataset.dsn(dataset.ADMIN_URL))
    try:
        info["postgresql"] = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    client = aioredis.Redis.from_url(dataset.REDIS_URL)
    try:
        info["redis"] = (await client.info("server"))["redis_version"]
    finally:
        await client.aclose()
    import sqlalchemy

    info["asyncpg"] = asyncpg.__version__
    info["sqlalchemy"] = sqlalchemy.__version__
    info["advanced_alchemy"] = importlib.metadata.version("advanced-alchemy")
    return info


async def cleanup_redis(prefix: str) -> None:
    client = aioredis.Redis.from_url(dataset.REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=prefix + "*", count=1000)]
        for start in range(0, len(keys), 500):
            await client.delete(*keys[start : start + 500])
    finally:
        await client.aclose()


def write_results(data: dict[str, Any]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=2, default=str) + "\n")
    log(f"wrote {RESULTS.relative_to(HERE.parent)}")


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated operations to run")
    parser.add_argument(
        "--profile", default="", help="profile edu-core on these operations (pyinstrument)"
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--no-tail", action="store_true", help="skip the tail-latency loop")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None

    started = time.perf_counter()
    log("creating and migrating the benchmark database ...")
    db = await dataset.create()
    prefix = f"edubench:{db.name}:"
    built: dict[str, Any] | None = None
    try:
        counts = await dataset.load(db)
        log(f"loaded by COPY in {time.perf_counter() - started:.1f}s: {counts}")
        w = Workload(db)
        built = await build(w, db, prefix)
        edu = built["contenders"]["edu"]
        notes = {} if edu.can_import else {"import_10k": "no UnitOfWork.import_rows here"}
        profile = set(filter(None, args.profile.split(",")))
        rows = await run_operations(built, only, profile)
        tail_result = None
        if not args.no_tail:
            log("tail latency: 50 clients, closed loop ...")
            tail_result = await tail.run(edu, built["contenders"]["limit"])
        for side in built["contenders"].values():
            await side.stop()
        await built["cache"]["raw"].stop()
        built = None
        memory: dict[str, Any] = {}
        if not args.no_memory:
            jobs = {"import_100k": db.import_org} if edu.can_import else {}
            jobs.update(bulk_100k=db.memory_org, stream_100k=db.memory_org)
            for kind, org in jobs.items():
                log(f"memory: {kind} ...")
                memory[kind] = memory_child(kind, db.app_url, str(org))
                log(f"  {kind}: {memory[kind]}")
        info = await machine()
        verdicts = report.target_report(rows, memory, tail_result, notes)
        elapsed = time.perf_counter() - started
        print(report.tables(rows))
        if tail_result is not None:
            print("\nTail latency (bench/tail.py)\n")
            print(tail.table(tail_result))
        print()
        print(report.verdicts(verdicts))
        print(f"\nmachine: {info}\ntotal {elapsed:.0f}s")
        write_results(
            {
                "columns": report.COLUMNS,
                "ops_per_second": {
                    op: {n: round(row.rate(n), 1) for n in row.rates if row.rates[n]}
                    for op, row in rows.items()
                },
                "ratios": {op: report.ratio_json(row) for op, row in rows.items()},
                "repeats": {
                    op: {
                        "repeats": row.repeats,
                        "seconds": round(row.seconds, 1),
                        "settled": row.settled,
                        "watched": list(row.watched),
                    }
                    for op, row in rows.items()
                },
                "targets": verdicts,
                "tail": tail_result,
                "memory": memory,
                "machine": info,
                "rows": counts,
                "seconds": round(elapsed, 1),
            }
        )
    finally:
        if built is not None:
            for side in built["contenders"].values():
                await side.stop()
        await cleanup_redis(prefix)
        if not args.keep:
            await dataset.drop(db)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
