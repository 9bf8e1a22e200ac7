"""Timing: warm-up, then several repeats; the figure is the median rate of the repeats."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Op = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class Plan:
    """How to time one operation.

    Time-based (`calls=None`): each repeat runs the op for `window` seconds. Count-based:
    each repeat runs it `calls` times (ops that consume rows, such as deletes). `per_call`
    is how many operations one call performs (a bulk insert, a batch of concurrent calls).
    """

    repeats: int = 5
    window: float = 0.2
    warmup: float = 0.15
    calls: int | None = None
    warmup_calls: int = 20
    per_call: int = 1


async def _warm(op: Op, plan: Plan) -> None:
    if plan.calls is None:
        deadline = time.perf_counter() + plan.warmup
        while time.perf_counter() < deadline:
            await op()
    else:
        for _ in range(plan.warmup_calls):
            await op()


async def _repeat(op: Op, plan: Plan) -> float:
    done = 0
    started = time.perf_counter()
    if plan.calls is None:
        deadline = started + plan.window
        while True:
            await op()
            done += 1
            now = time.perf_counter()
            if now >= deadline:
                break
    else:
        for _ in range(plan.calls):
            await op()
        done = plan.calls
        now = time.perf_counter()
    return done * plan.per_call / (now - started)


async def measure(op: Op, plan: Plan) -> float:
    """Operations per second: the median over `plan.repeats` repeats after a warm-up."""
    return (await measure_side_by_side({"op": op}, plan))["op"]


async def measure_side_by_side(ops: dict[str, Op], plan: Plan) -> dict[str, float]:
    """Like `measure` for several contenders, their repeats interleaved round-robin.

    The machine's load drifts; interleaving makes every contender see the same drift.
    """
    for op in ops.values():
        await _warm(op, plan)
    rates: dict[str, list[float]] = {name: [] for name in ops}
    for _ in range(plan.repeats):
        for name, op in ops.items():
            gc.collect()
            rates[name].append(await _repeat(op, plan))
    return {name: statistics.median(values) for name, values in rates.items()}
