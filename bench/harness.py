"""Timing: contenders paired call by call per repeat, ratios per repeat, until they hold still.

The machine's load drifts (2 shared cores here, other jobs come and go), so a ratio of two
rates measured even a fraction of a second apart moves with it. Within a repeat the
contenders take turns call by call (edu, limit, raw_tx, ..., edu, limit, ...; the order
rotates from repeat to repeat), each call timed on its own, so every contender's rate in
that repeat covers the same stretch of time; each repeat gives one ratio per pair. The
figure is the median of the per-repeat ratios with its interquartile range. Repeats go on
until the watched ratios' quartiles are within ±`spread` of their median, or the row's time
cap (or repeat cap) is reached; the row records whether it settled.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

Op = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class Plan:
    """How to time one operation.

    Time-based (`calls=None`): each repeat runs the op for `window` seconds. Count-based:
    each repeat runs it `calls` times (ops that consume rows, such as deletes). `per_call`
    is how many operations one call performs (a bulk insert, a batch of concurrent calls).
    `max_repeats` bounds ops that consume a finite supply of rows.
    """

    window: float = 0.1
    warmup: float = 0.15
    calls: int | None = None
    warmup_calls: int = 20
    per_call: int = 1
    min_repeats: int = 6
    max_repeats: int = 60
    cap: float = 9.0
    spread: float = 0.10


@dataclass(frozen=True)
class Ratio:
    """Median and quartiles of the per-repeat ratios `base / other`."""

    median: float
    q1: float
    q3: float
    repeats: int

    @classmethod
    def of(cls, values: list[float]) -> Ratio:
        if len(values) < 2:
            return cls(values[0], values[0], values[0], len(values))
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
        return cls(statistics.median(values), q1, q3, len(values))

    @property
    def spread(self) -> float:
        """The larger distance of a quartile from the median, relative to the median."""
        return max(self.median - self.q1, self.q3 - self.median) / self.median

    def settled(self, limit: float) -> bool:
        return self.spread <= limit

    def as_json(self) -> dict[str, Any]:
        return {
            "median": round(self.median, 4),
            "q1": round(self.q1, 4),
            "q3": round(self.q3, 4),
            "iqr": round(self.q3 - self.q1, 4),
            "spread": round(self.spread, 4),
            "repeats": self.repeats,
        }


@dataclass
class Row:
    """One operation's repeats: every contender's rates, the ratios of `base` to the others."""

    base: str
    rates: dict[str, list[float]]
    seconds: float = 0.0
    settled: bool = False
    watched: tuple[str, ...] = ()
    ratios: dict[str, Ratio] = field(default_factory=dict)

    def rate(self, name: str) -> float:
        return statistics.median(self.rates[name])

    @property
    def repeats(self) -> int:
        return len(next(iter(self.rates.values())))

    def compute(self) -> None:
        base = self.rates.get(self.base)
        if not base:
            return
        self.ratios = {
            name: Ratio.of([b / o for b, o in zip(base, other, strict=True) if o])
            for name, other in self.rates.items()
            if name != self.base and other
        }


async def _warm(op: Op, plan: Plan) -> None:
    if plan.calls is None:
        deadline = time.perf_counter() + plan.warmup
        while time.perf_counter() < deadline:
            await op()
    else:
        for _ in range(plan.warmup_calls):
            await op()


async def _repeat(ops: dict[str, Op], order: list[str], plan: Plan) -> dict[str, float]:
    """One repeat: the contenders' calls interleaved; each one's rate over its own calls.

    Time-based plans run for `window` seconds per contender in all, count-based ones make
    `calls` calls per contender.
    """
    spent = dict.fromkeys(order, 0.0)
    calls = 0
    clock = time.perf_counter
    deadline = clock() + plan.window * len(order)
    while True:
        for name in order:
            op = ops[name]
            began = clock()
            await op()
            spent[name] += clock() - began
        calls += 1
        if plan.calls is None:
            if clock() >= deadline:
                break
        elif calls >= plan.calls:
            break
    return {name: calls * plan.per_call / spent[name] for name in order}


async def measure(op: Op, plan: Plan) -> float:
    """Operations per second of one op: the median over the repeats after a warm-up."""
    return (await measure_paired({"op": op}, plan, base="op")).rate("op")


async def measure_paired(
    ops: dict[str, Op], plan: Plan, *, base: str = "edu", watch: Iterable[str] = ()
) -> Row:
    """Every contender once per repeat, back to back; stop when the watched ratios settle.

    `watch` names the contenders whose ratio to `base` must settle (all of them if empty).
    """
    names = list(ops)
    watched = tuple(w for w in watch if w in ops and w != base) or tuple(
        n for n in names if n != base
    )
    for op in ops.values():
        await _warm(op, plan)
    row = Row(base=base, rates={name: [] for name in names}, watched=watched)
    started = time.perf_counter()
    for repeat in range(plan.max_repeats):
        shift = repeat % len(names)
        gc.collect()
        rates = await _repeat(ops, names[shift:] + names[:shift], plan)
        for name, rate in rates.items():
            row.rates[name].append(rate)
        if repeat + 1 < plan.min_repeats:
            continue
        row.compute()
        row.settled = base not in ops or all(
            row.ratios[w].settled(plan.spread) for w in watched if w in row.ratios
        )
        if row.settled or time.perf_counter() - started >= plan.cap:
            break
    row.compute()
    row.seconds = time.perf_counter() - started
    return row
