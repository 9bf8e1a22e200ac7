"""Schemathesis against the served example app: every check, every operation, zero failures.

The schema is the contract: data it allows must be accepted, data it refuses must be refused,
every answer must be documented (status, headers, body). Signed in as fuzzville's
administrator (tests/e2e/schemathesis.toml says how, and lists the few answers the schema
cannot predict).

Bounded for `make test` (about a minute on 2 cores): the examples, fuzzing and stateful
phases, EDU_FUZZ_EXAMPLES (default 30) examples per operation. `make fuzz` adds the coverage
phase (boundary values, missing headers, undeclared methods: about 5,000 more cases) and 300
examples per operation. The statistics (operations, cases, failures) are printed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.served import serve
from tests.e2e.stack import BOOTSTRAP_KEY, memory_core

HERE = Path(__file__).parent
EXAMPLES = int(os.environ.get("EDU_FUZZ_EXAMPLES", "30"))
PHASES = os.environ.get("EDU_FUZZ_PHASES", "examples,fuzzing,stateful")


def _st() -> str:
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    if st is None:
        pytest.fail("schemathesis is not installed: `make venv` installs the dev extra")
    return st


def test_schemathesis_finds_no_failure(tmp_path: Path) -> None:
    report = tmp_path / "schemathesis.json"
    with serve(memory_core) as served:
        command = [
            _st(),
            "--config-file",
            str(HERE / "schemathesis.toml"),
            "run",
            f"{served.base_url}/openapi.json",
            "--checks",
            "all",
            "--phases",
            PHASES,
            "--max-examples",
            str(EXAMPLES),
            "--seed",
            os.environ.get("EDU_FUZZ_SEED", "20261202"),
            "--report",
            "json",
            "--report-json-path",
            str(report),
            "--no-color",
        ]
        env = {**os.environ, "EDU_FUZZ_BOOTSTRAP_KEY": BOOTSTRAP_KEY}
        run = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=1800, check=False
        )
    summary = json.loads(report.read_text()) if report.exists() else {}
    cases = summary.get("test_cases", {})
    failures = summary.get("failures", [])
    operations = summary.get("operations", {})
    print(
        f"\nschemathesis: {operations.get('tested')}/{operations.get('total')} operations, "
        f"{cases.get('generated')} cases, {cases.get('with_failures')} with failures, "
        f"{len(summary.get('errors', []))} errors, phases {PHASES}, "
        f"{EXAMPLES} examples per operation"
    )
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    assert failures == [] and summary.get("errors") == []
    assert operations.get("tested") == operations.get("total") >= 30
    assert cases.get("generated", 0) > 0
