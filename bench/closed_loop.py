"""A closed loop of concurrent clients on a weighted mix: throughput and latency percentiles.

Shared by the tail-latency run (`tail.py`: edu-core against `limit`) and the read-replica
run (`replica.py`: the primary alone against primary plus replica). Each client sends its
next request as soon as the previous one answered; the sides take turns in short segments
so both see the same machine load, and their latencies are pooled over the segments.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

#: runs the operation of that name for one client (its own state may live in the closure)
Call = Callable[[str, random.Random], Awaitable[object]]
#: makes a client's Call (a fresh one per client and segment)
NewClient = Callable[[], Call]
Mix = tuple[tuple[str, float], ...]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def segment(
    new_client: NewClient, mix: Mix, clients: int, seconds: float, seed: int
) -> tuple[dict[str, list[float]], int]:
    """One closed-loop segment: the latencies (ms) of the operations done, by name; errors."""
    deadline = time.perf_counter() + seconds
    latencies: dict[str, list[float]] = {name: [] for name, _ in mix}
    errors = 0
    names = [name for name, _ in mix]
    weights = [weight for _, weight in mix]

    async def client(index: int) -> None:
        nonlocal errors
        rng = random.Random(seed * 1000 + index)
        call = new_client()
        while (began := time.perf_counter()) < deadline:
            name = rng.choices(names, weights)[0]
            try:
                await call(name, rng)
            except Exception as error:
                errors += 1
                if errors <= 5:
                    log(f"  {name} failed: {type(error).__name__}: {error}")
                continue
            latencies[name].append((time.perf_counter() - began) * 1000)

    await asyncio.gather(*(client(i) for i in range(clients)))
    return latencies, errors


def summary(latencies: list[float], seconds: float) -> dict[str, Any]:
    if len(latencies) < 2:
        return {"count": len(latencies)}
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "count": len(latencies),
        "ops_per_second": round(len(latencies) / seconds, 1),
        "p50_ms": round(cuts[49], 2),
        "p99_ms": round(cuts[98], 2),
        "max_ms": round(max(latencies), 2),
    }


async def closed_loop(
    sides: dict[str, NewClient],
    mix: Mix,
    *,
    clients: int,
    seconds: float,
    segments: int,
    warmup: float = 0.5,
) -> dict[str, dict[str, Any]]:
    """Each side for `seconds` in all, in `segments` turns alternating with the others."""
    for new_client in sides.values():
        await segment(new_client, mix, clients, warmup, seed=99)
    pooled: dict[str, dict[str, list[float]]] = {name: {op: [] for op, _ in mix} for name in sides}
    errors = dict.fromkeys(sides, 0)
    for number in range(segments):
        order = list(sides) if number % 2 == 0 else list(reversed(sides))
        for name in order:
            latencies, failed = await segment(
                sides[name], mix, clients, seconds / segments, seed=number
            )
            for op, values in latencies.items():
                pooled[name][op].extend(values)
            errors[name] += failed
    out: dict[str, dict[str, Any]] = {}
    for name, by_op in pooled.items():
        everything = [v for values in by_op.values() for v in values]
        out[name] = {
            **summary(everything, seconds),
            "errors": errors[name],
            "operations": {op: summary(values, seconds) for op, values in by_op.items()},
        }
    return out
