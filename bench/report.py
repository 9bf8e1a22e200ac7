"""Targets (issue 13), their verdicts, and the printed tables of `bench/run.py`."""

from __future__ import annotations

from typing import Any

from harness import Row

#: every column of the tables, one line each (also written into latest.json)
COLUMNS = {
    "edu": "edu-core's public API (units of work, EduCore use cases), app role, RLS on",
    "limit": "raw asyncpg sending exactly edu-core's round trips (BEGIN+signed settings;"
    " statements; COMMIT/ROLLBACK), app role, RLS on, own connection queue without reset",
    "raw_tx": "raw asyncpg pool as a typical hand-written service: BEGIN; signed settings;"
    " statements; COMMIT; asyncpg's reset on release; app role, RLS on",
    "raw": "raw asyncpg pool, prepared statements outside a transaction, COPY for bulk;"
    " owner, no RLS (for the cache rows: redis-py GET + orjson)",
    "sqlalchemy": "a hand-written SQLAlchemy declarative repository, session per request;"
    " owner, no RLS",
    "advanced_alchemy": "advanced-alchemy's SQLAlchemyAsyncRepository, session per request;"
    " owner, no RLS",
    "add_all": "edu-core, seed style: the same rows built into User entities, uow.add_all",
}
ORDER = ("edu", "limit", "raw_tx", "raw", "sqlalchemy", "advanced_alchemy", "add_all")

#: target, operation, versus, minimum ratio edu/versus (issue 13)
TARGETS: list[tuple[str, str, str, float]] = [
    ("P1", "get_by_id", "limit", 0.9),
    ("P1", "get_by_id", "sqlalchemy", 2.0),
    ("P2", "register", "limit", 0.85),
    ("P3", "find_page", "limit", 0.9),
    ("P3", "keyset_page", "limit", 0.9),
    ("P3", "count", "limit", 0.9),
    ("P3", "statistics", "limit", 0.9),
    ("P4", "import_10k", "limit", 1.5),
    ("P4", "import_10k", "add_all", 5.0),
    ("P5", "cache_hit", "raw", 0.9),
    ("P6", "concurrent_20", "limit", 0.9),
]
#: memory job -> peak RSS limit in MB
MEMORY_LIMITS = {
    "import_100k": ("P4", 150.0),
    "bulk_100k": ("P7", 200.0),
    "stream_100k": ("P7", 200.0),
}


def watched(op: str) -> tuple[str, ...]:
    """The contenders whose ratio must settle before a row stops repeating."""
    named = tuple(versus for _, o, versus, _ in TARGETS if o == op)
    return named or (("raw",) if op.startswith("cache_") else ("limit",))


def ratio_json(row: Row) -> dict[str, Any]:
    return {name: ratio.as_json() for name, ratio in row.ratios.items()}


def target_report(
    rows: dict[str, Row], memory: dict[str, Any], tail: dict[str, Any] | None, notes: dict[str, str]
) -> list[dict[str, Any]]:
    report: list[dict[str, Any]] = []
    for target, op, versus, minimum in TARGETS:
        row = rows.get(op)
        ratio = row.ratios.get(versus) if row else None
        item: dict[str, Any] = {
            "target": target,
            "operation": op,
            "versus": versus,
            "need": f">= {minimum}",
            "ratio": None if ratio is None else round(ratio.median, 3),
            "met": ratio is not None and ratio.median >= minimum,
        }
        if ratio is not None and row is not None:
            item.update(
                q1=round(ratio.q1, 3),
                q3=round(ratio.q3, 3),
                iqr=round(ratio.q3 - ratio.q1, 3),
                spread=round(ratio.spread, 3),
                repeats=ratio.repeats,
                settled=row.settled,
            )
        elif op in notes:
            item["note"] = notes[op]
        report.append(item)
    for kind, data in memory.items():
        target, limit = MEMORY_LIMITS[kind]
        peak = data.get("peak_mb")
        report.append(
            {
                "target": target,
                "operation": kind,
                "versus": "peak RSS MB",
                "need": f"< {limit}",
                "ratio": peak,
                "met": peak is not None and peak < limit,
                **({"note": data["error"]} if "error" in data else {}),
            }
        )
    if tail is not None:
        report.append(
            {
                "target": "tail",
                "operation": "p99 of the mixed closed loop",
                "versus": "limit",
                "need": f"<= {tail['p99_within']}",
                "ratio": tail["p99_ratio"],
                "met": tail["met"],
            }
        )
    return report


def _cell(row: Row, name: str) -> str:
    ratio = row.ratios.get(name)
    if ratio is None:
        return "-"
    return f"{ratio.median:.2f}x [{ratio.q1:.2f}-{ratio.q3:.2f}]"


def tables(rows: dict[str, Row]) -> str:
    """ops/s per contender, then edu's ratio to each with its interquartile range."""
    names = [n for n in ORDER if any(n in row.rates for row in rows.values())]
    lines = [
        "| operation | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for op, row in rows.items():
        cells = [f"{row.rate(n):,.0f}" if row.rates.get(n) else "-" for n in names]
        lines.append(f"| {op} | " + " | ".join(cells) + " |")
    others = [n for n in names if n != "edu"]
    lines += [
        "",
        "| operation | " + " | ".join(f"edu/{n} median [IQR]" for n in others) + " | repeats |",
        "|---|" + "---|" * (len(others) + 1),
    ]
    for op, row in rows.items():
        settled = "" if row.settled else " (cap)"
        lines.append(
            f"| {op} | "
            + " | ".join(_cell(row, n) for n in others)
            + f" | {row.repeats}{settled} |"
        )
    return "\n".join(lines)


def verdicts(report: list[dict[str, Any]]) -> str:
    lines = []
    for item in report:
        ratio = item["ratio"]
        shown = "n/a" if ratio is None else f"{ratio:.2f}"
        spread = f" [{item['q1']:.2f}-{item['q3']:.2f}]" if "q1" in item else ""
        note = f" ({item['note']})" if "note" in item else ""
        lines.append(
            f"{item['target']:<4} {item['operation']:<14} vs {item['versus']:<12}"
            f" {shown:>7}{spread:<14} need {item['need']:<7}"
            f" {'met' if item['met'] else 'NOT MET'}{note}"
        )
    return "\n".join(lines)
