"""Client CPU per operation (`time.process_time`), edu-core and `limit` interleaved.

    .venv/bin/python bench/cpu.py [get_by_id,count,concurrent_20] [--repeats 9] [--calls 200]

On a shared machine wall time moves with everyone else's load; the client's own CPU per
call moves far less, and the gap to `limit` is client CPU (README, *Where the time goes*).
Each repeat runs `calls` calls of one contender, then the other's (the order alternates),
and gives one CPU figure per contender and one ratio; the medians and quartiles are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import dataset  # noqa: E402
from workload import CONCURRENCY, Workload  # noqa: E402

METHOD = {"concurrent_20": "concurrent"}


def quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4)
    return q1, q2, q3


async def cpu_per_call(op: Any, calls: int, per_call: int) -> tuple[float, float]:
    """(CPU, user-mode CPU) µs per call: the kernel's share (socket sends, waking the server
    process) moves with the machine's load more than the client's own Python does."""
    gc.collect()
    began, user = time.process_time(), os.times().user
    for _ in range(calls):
        await op()
    done = calls * per_call
    return (time.process_time() - began) / done * 1e6, (os.times().user - user) / done * 1e6


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ops", nargs="?", default="get_by_id,count,concurrent_20")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args(argv)
    from edu_side import Edu
    from limit_side import Limit

    db = await dataset.create()
    try:
        await dataset.load(db)
        w = Workload(db)
        sides = {
            "edu": Edu(w, db.app_url, dataset.REDIS_URL, f"edubench:{db.name}:edu:"),
            "limit": Limit(w, db.app_dsn),
        }
        for side in sides.values():
            await side.start()
        try:
            for op_name in args.ops.split(","):
                per_call = CONCURRENCY if op_name == "concurrent_20" else 1
                calls = max(10, args.calls // per_call)
                ops = {n: getattr(s, METHOD.get(op_name, op_name)) for n, s in sides.items()}
                for op in ops.values():
                    await cpu_per_call(op, calls, per_call)  # warm-up
                cpu: dict[str, list[tuple[float, float]]] = {n: [] for n in ops}
                for repeat in range(args.repeats):
                    order = list(ops) if repeat % 2 == 0 else list(reversed(ops))
                    for name in order:
                        cpu[name].append(await cpu_per_call(ops[name], calls, per_call))
                for kind, index in (("CPU", 0), ("user", 1)):
                    figures = {n: [v[index] for v in values] for n, values in cpu.items()}
                    ratios = [
                        e / lim if lim else float("nan")
                        for e, lim in zip(figures["edu"], figures["limit"], strict=True)
                    ]
                    shown = "  ".join(
                        f"{n} {quartiles(v)[1]:,.0f} µs"
                        f" [{quartiles(v)[0]:,.0f}-{quartiles(v)[2]:,.0f}]"
                        for n, v in figures.items()
                    )
                    q1, q2, q3 = quartiles(ratios)
                    print(
                        f"{op_name:<14} {kind:<4} {shown}  edu/limit {q2:.2f}x [{q1:.2f}-{q3:.2f}]",
                        flush=True,
                    )
        finally:
            for side in sides.values():
                await side.stop()
    finally:
        await dataset.drop(db)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
