"""edu-core against raw asyncpg, plain SQLAlchemy and advanced-alchemy, side by side.

    make bench                     # or: .venv/bin/python bench/run.py [--only get_by_id,count]

One process, one run: creates a dedicated PostgreSQL database, migrates it as owner, loads
50,000 users over 10 organizations by COPY, times every operation for every contender
(median ops/s of several repeats after a warm-up), measures peak memory of a 100,000-user
bulk create and streamed read in subprocesses, prints a table, writes
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
from harness import Plan, measure, measure_side_by_side  # noqa: E402
from workload import BULK_SIZE, CONCURRENCY, CONTENDERS, Workload  # noqa: E402

RESULTS = HERE / "results" / "latest.json"

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
    ("soft_delete", Plan(calls=40, warmup_calls=10), CONTENDERS),
    (
        "bulk_10k",
        Plan(calls=1, warmup_calls=0, repeats=3, per_call=BULK_SIZE),
        CONTENDERS,
    ),
    ("concurrent_20", Plan(per_call=CONCURRENCY), CONTENDERS),
    ("cache_hit", Plan(), ("edu", "raw")),
    ("cache_miss", Plan(calls=100, warmup_calls=10), ("edu", "raw")),
]

METHOD = {"bulk_10k": "bulk", "concurrent_20": "concurrent"}

#: target: (operation, versus, minimum ratio)
TARGETS: list[tuple[str, str, str, float]] = [
    ("P1", "get_by_id", "sqlalchemy", 2.0),
    ("P1", "get_by_id", "raw_tx", 0.8),
    ("P2", "register", "raw_tx", 0.8),
    ("P3", "find_page", "raw_tx", 0.85),
    ("P3", "keyset_page", "raw_tx", 0.85),
    ("P3", "count", "raw_tx", 0.85),
    ("P3", "statistics", "raw_tx", 0.85),
    ("P4", "bulk_10k", "raw_tx", 1.2),
    ("P5", "cache_hit", "raw", 0.9),
    ("P6", "concurrent_20", "raw_tx", 0.5),
]

MEMORY_LIMIT_MB = 200.0
MEMORY_USERS = 100_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def build(w: Workload, db: dataset.BenchDatabase, prefix: str) -> dict[str, Any]:
    from edu_side import Edu
    from orm_side import AdvancedAlchemy, PlainSqlAlchemy
    from raw_side import Raw, RawRedis, RawTx

    owner_async = db.owner_url
    edu = Edu(w, db.app_url, dataset.REDIS_URL, prefix + "edu:")
    raw = Raw(w, db.owner_dsn)
    contenders: dict[str, Any] = {
        "edu": edu,
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


async def run_operations(
    built: dict[str, Any], only: set[str] | None, profile: str | None
) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    for op, plan, names in OPERATIONS:
        if only and op not in only:
            continue
        methods = {}
        for name in names:
            side = built["cache"][name] if op.startswith("cache_") else built["contenders"][name]
            method = getattr(side, METHOD.get(op, op), None)
            if method is not None:
                methods[name] = method
        if profile and op == profile and "edu" in methods:
            await profiled(methods["edu"], plan)
        started = time.perf_counter()
        results[op] = await measure_side_by_side(methods, plan)
        shown = "  ".join(f"{n}={r:,.0f}" for n, r in results[op].items())
        log(f"  {op:<14} {shown}  ({time.perf_counter() - started:.1f}s)")
    return results


async def profiled(method: Any, plan: Plan) -> None:
    """Profile edu-core on one operation (pyinstrument), printed to stderr."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0002, async_mode="enabled")
    profiler.start()
    await measure(method, Plan(repeats=3, window=plan.window * 4) if plan.calls is None else plan)
    profiler.stop()
    log(profiler.output_text(unicode=True, color=False, show_all=False))


def ratios(results: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for op, row in results.items():
        edu = row.get("edu")
        if not edu:
            continue
        out[op] = {name: edu / rate for name, rate in row.items() if name != "edu" and rate}
    return out


def target_report(
    results: dict[str, dict[str, float]], memory: dict[str, Any]
) -> list[dict[str, Any]]:
    rat = ratios(results)
    report = []
    for target, op, versus, minimum in TARGETS:
        value = rat.get(op, {}).get(versus)
        report.append(
            {
                "target": target,
                "operation": op,
                "versus": versus,
                "minimum": minimum,
                "ratio": value,
                "met": value is not None and value >= minimum,
            }
        )
    for op, row in rat.items():
        value = row.get("advanced_alchemy")
        if value is not None:
            report.append(
                {
                    "target": "AA",
                    "operation": op,
                    "versus": "advanced_alchemy",
                    "minimum": 1.0,
                    "ratio": value,
                    "met": value > 1.0,
                }
            )
    for kind, data in memory.items():
        report.append(
            {
                "target": "P7",
                "operation": kind,
                "versus": "peak RSS MB",
                "minimum": MEMORY_LIMIT_MB,
                "ratio": data.get("peak_mb"),
                "met": data.get("peak_mb") is not None and data["peak_mb"] < MEMORY_LIMIT_MB,
            }
        )
    return report


def table(results: dict[str, dict[str, float]]) -> str:
    names = list(CONTENDERS)
    rat = ratios(results)
    head = f"| {'operation':<14} | " + " | ".join(f"{n:>16}" for n in names)
    head += " | " + " | ".join(f"{'edu/' + n:>13}" for n in names[1:]) + " |"
    lines = [head, "|" + "|".join("-" * (len(c) + 2) for c in head.split("|")[1:-1]) + "|"]
    for op, row in results.items():
        cells = [f"{row[n]:>16,.0f}" if n in row else f"{'-':>16}" for n in names]
        ratio_cells = [
            f"{rat[op][n]:>12.2f}x" if n in rat.get(op, {}) else f"{'-':>13}" for n in names[1:]
        ]
        lines.append(f"| {op:<14} | " + " | ".join(cells) + " | " + " | ".join(ratio_cells) + " |")
    return "\n".join(lines)


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


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated operations to run")
    parser.add_argument("--profile", help="profile edu-core on this operation (pyinstrument)")
    parser.add_argument("--no-memory", action="store_true", help="skip the P7 subprocesses")
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
        results = await run_operations(built, only, args.profile)
        for side in built["contenders"].values():
            await side.stop()
        await built["cache"]["raw"].stop()
        built = None
        memory: dict[str, Any] = {}
        if not args.no_memory:
            for kind in ("bulk_100k", "stream_100k"):
                log(f"memory: {kind} ...")
                memory[kind] = memory_child(kind, db.app_url, str(db.memory_org))
                log(f"  {kind}: {memory[kind]}")
        info = await machine()
        report = target_report(results, memory)
        elapsed = time.perf_counter() - started
        print(table(results))
        print()
        for item in report:
            ratio = item["ratio"]
            shown = "n/a" if ratio is None else f"{ratio:.2f}"
            print(
                f"{item['target']:<3} {item['operation']:<14} vs {item['versus']:<17}"
                f" {shown:>8} (need {'<' if item['target'] == 'P7' else '>='}"
                f" {item['minimum']}) {'met' if item['met'] else 'NOT MET'}"
            )
        print(f"\nmachine: {info}\ntotal {elapsed:.0f}s")
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(
            json.dumps(
                {
                    "ops_per_second": results,
                    "ratios": ratios(results),
                    "targets": report,
                    "memory": memory,
                    "machine": info,
                    "rows": counts,
                    "seconds": round(elapsed, 1),
                },
                indent=2,
                default=str,
            )
        )
        log(f"wrote {RESULTS.relative_to(HERE.parent)}")
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
