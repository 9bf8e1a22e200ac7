"""The domain stays pure: importing it loads no adapter library."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = {
    "sqlalchemy",
    "asyncpg",
    "aiosqlite",
    "redis",
    "cattrs",
    "orjson",
    "dependency_injector",
    "edu_infra",
    "pwdlib",
    "fastapi",
    "pydantic",
}


def test_importing_the_whole_domain_loads_no_adapter_library() -> None:
    code = (
        "import sys, edu_domain, edu_domain.services, edu_domain.ports, edu_domain.caching, "
        "edu_domain.model, edu_domain.query\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        ).stdout.split()
    )
    assert "edu_domain" in loaded
    assert loaded & FORBIDDEN == set()
