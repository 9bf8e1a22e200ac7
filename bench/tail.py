"""Tail latency: 50 clients in a closed loop for 10 s, edu-core and `limit` side by side.

The mix: 80% reads (a user by id through `users.get`, a read-only unit of work), 15% updates
(`users.update` of the name: read, versioned UPDATE), 5% registrations (`users.register`).
`limit` (`limit_side.py`) sends the same statements in edu-core's transaction shape. Both
have a pool of 10 connections (no overflow), so 40 clients wait for a connection at any
time: the tail is mostly the pool's queue, and its fairness. Run by `bench/run.py` on the
contenders it built (or alone: `.venv/bin/python bench/tail.py`, which builds its own
database). Target: edu-core's p99 within 1.5x of `limit`'s.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import dataset  # noqa: E402
from closed_loop import Call, NewClient, closed_loop, log  # noqa: E402
from workload import Workload  # noqa: E402

CLIENTS, SECONDS, SEGMENTS = 50, 10.0, 4
MIX = (("get", 0.80), ("update", 0.15), ("register", 0.05))
P99_WITHIN = 1.5


def edu_client(edu: Any) -> NewClient:
    core, scope, w = edu.core, edu.scope, edu.w

    async def call(name: str, rng: random.Random) -> object:
        if name == "get":
            return await core.users.get(scope, w.next_member()[0])
        return await (edu.update() if name == "update" else edu.register())

    return lambda: call


def limit_client(limit: Any) -> NewClient:
    w = limit.w

    async def call(name: str, rng: random.Random) -> object:
        if name == "get":
            return await limit.get(w.next_member()[0], read_only=True)
        return await (limit.update() if name == "update" else limit.register())

    def new_client() -> Call:
        return call

    return new_client


async def run(edu: Any, limit: Any) -> dict[str, Any]:
    """The closed loop on already started contenders; the p99 target's verdict."""
    started = time.perf_counter()
    sides = await closed_loop(
        {"edu": edu_client(edu), "limit": limit_client(limit)},
        MIX,
        clients=CLIENTS,
        seconds=SECONDS,
        segments=SEGMENTS,
    )
    edu_p99, limit_p99 = sides["edu"].get("p99_ms"), sides["limit"].get("p99_ms")
    ratio = edu_p99 / limit_p99 if edu_p99 and limit_p99 else None
    result = {
        "clients": CLIENTS,
        "seconds": SECONDS,
        "segments": SEGMENTS,
        "mix": dict(MIX),
        "sides": sides,
        "p99_ratio": None if ratio is None else round(ratio, 3),
        "p99_within": P99_WITHIN,
        "met": ratio is not None and ratio <= P99_WITHIN,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    for name, side in sides.items():
        log(
            f"  tail {name:<6} {side.get('ops_per_second', 0):>8,.0f} ops/s"
            f"  p50 {side.get('p50_ms')} ms  p99 {side.get('p99_ms')} ms"
            f"  errors {side['errors']}"
        )
    return result


def table(tail: dict[str, Any]) -> str:
    lines = [
        f"| {tail['clients']} clients, {tail['seconds']:.0f} s each | ops/s | p50 ms | p99 ms"
        " | max ms | errors |",
        "|---|---|---|---|---|---|",
    ]
    for name, side in tail["sides"].items():
        lines.append(
            f"| {name} | {side.get('ops_per_second', 0):,.0f} | {side.get('p50_ms')} |"
            f" {side.get('p99_ms')} | {side.get('max_ms')} | {side['errors']} |"
        )
    verdict = "met" if tail["met"] else "NOT MET"
    lines.append(f"\np99 edu/limit = {tail['p99_ratio']} (need <= {tail['p99_within']}): {verdict}")
    return "\n".join(lines)


async def main() -> int:
    from edu_side import Edu
    from limit_side import Limit

    db = await dataset.create()
    try:
        await dataset.load(db)
        w = Workload(db)
        edu = Edu(w, db.app_url, dataset.REDIS_URL, f"edubench:{db.name}:edu:")
        limit = Limit(w, db.app_dsn)
        for side in (edu, limit):
            await side.start()
        try:
            print(table(await run(edu, limit)))
        finally:
            for side in (edu, limit):
                await side.stop()
    finally:
        await dataset.drop(db)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
