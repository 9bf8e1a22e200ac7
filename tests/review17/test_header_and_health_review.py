"""Review 17: hostile `Edu-Consistency` headers against the example service (a clear 422,
or a bounded read on the primary: never a 500) and `edu health` with read replicas."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from tests.e2e.api import running_api
from tests.e2e.stack import container_core
from tests.replica.cluster import Cluster
from tests.replica.support import APP, migrate, replayed
from tests.sql_harness import RLS_KEY

pytestmark = pytest.mark.postgres

DATABASE = "edu_review17_http"
HEADER = "Edu-Consistency"


def _settings(cluster: Cluster, replica_url: str | None = None) -> dict[str, str]:
    return {
        "EDU_DATABASE_URL": cluster.url(cluster.primary_port, DATABASE, APP),
        "EDU_DATABASE_APP_ROLE": APP,
        "EDU_RLS_KEY": RLS_KEY,
        "EDU_DATABASE_REPLICA_URLS": replica_url
        or cluster.url(cluster.standby_port, DATABASE, APP),
        "EDU_DATABASE_REPLICA_WAIT_MS": "20",
        "EDU_DATABASE_REPLICA_RETRY": "0.05",
        "EDU_CACHE_ENABLED": "false",
        "EDU_ARGON2_TIME_COST": "1",
        "EDU_ARGON2_MEMORY_KIB": "8",
        "EDU_ARGON2_PARALLELISM": "1",
    }


MALFORMED = [
    "x",
    "",
    " 0/1",
    "0/1 ",
    "0/1/2",
    "-1/0",
    "100000000/0",  # 9 hex digits: beyond a WAL position
    "0x1/0x1",
    "0/" + "1" * 10_000,
    "٠/١",  # Arabic-Indic digits, which \d would take  # noqa: RUF001
]


async def test_hostile_consistency_headers_are_a_422_or_a_bounded_read(cluster: Cluster) -> None:
    await migrate(cluster, DATABASE)
    async with running_api(lambda: container_core(_settings(cluster))) as api:
        admin = await api.bootstrap("review17-header-school")
        created = await api.client.post(
            "/content", headers=admin.auth, json={"title": "Ratios", "body": "Text."}
        )
        assert created.status_code == 201, created.text
        path = f"/content/{created.json()['id']}"
        await replayed(cluster, DATABASE)
        for value in MALFORMED:
            raw = value.encode("utf-8")
            sent = [(k.encode(), v.encode()) for k, v in admin.auth.items()]
            answer = await api.client.get(path, headers=[*sent, (HEADER.encode(), raw)])
            assert answer.status_code == 422, (value[:20], answer.text)
            body = answer.json()
            assert body["field"] == HEADER
            assert "SELECT" not in answer.text and "asyncpg" not in answer.text
        # a token from the far future (another cluster, a forged one): a read on the primary
        far = await api.client.get(path, headers={**admin.auth, HEADER: "FFFFFFFF/FFFFFFFF"})
        assert far.status_code == 200, far.text
        assert far.headers[HEADER] == "FFFFFFFF/FFFFFFFF"
        # several headers: the last one counts, a malformed last one is refused
        both = await api.client.get(
            path, headers=[*admin.auth.items(), (HEADER, "0/1"), (HEADER, "zz")]
        )
        assert both.status_code == 422


async def _health(env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "edu_infra",
        "health",
        env={**{k: v for k, v in os.environ.items() if k != "EDU_REDIS_URL"}, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_edu_health_reports_a_replica_that_is_not_a_standby(cluster: Cluster) -> None:
    await migrate(cluster, DATABASE)
    not_a_standby = cluster.url(cluster.primary_port, DATABASE, APP)
    _code, out = await _health(_settings(cluster, not_a_standby))
    assert "database: ok" in out, out
    assert "replica" in out.lower(), out
    assert "promoted" in out.lower() or "not a standby" in out.lower(), out
