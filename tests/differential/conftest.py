"""Reports how many generated steps the differential state machines executed.

Each state-machine test stores its counts with `record_property("steps", {backend: n})`
(see `tests/differential/support.py`); the summary adds them up per test module and backend,
so the CI log always says how much was exercised.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

STEPS_PROPERTY = "differential_steps"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for reports in terminalreporter.stats.values():
        for report in reports:
            if not isinstance(report, pytest.TestReport) or report.when != "call":
                continue
            for name, value in report.user_properties:
                if name != STEPS_PROPERTY:
                    continue
                module = report.nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")
                for backend, count in value.items():
                    totals[module][backend] += int(count)
    if not totals:
        return
    terminalreporter.write_sep("=", "differential state machines: executed steps")
    for module, counts in sorted(totals.items()):
        parts = ", ".join(f"{backend}={count}" for backend, count in counts.items())
        terminalreporter.write_line(f"{module}: {parts}, total={sum(counts.values())}")
