"""Review 17b: `edu health` with replicas that cannot answer, and one cut off from its primary.

A fresh `edu health` process probes each replica once: a standby with no WAL receiver then
looks like a caught-up one (it has replayed all it received, its estimate is 0, and the
"cut off for longer than max_lag" rule needs two looks), so it is reported `ok`.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.replica.cluster import Cluster
from tests.replica.support import APP, migrate, replayed, superuser
from tests.review17.test_header_and_health_review import _health, _settings

pytestmark = pytest.mark.postgres

DATABASE = "edu_review17_http"  # the review17 settings name this database


def _replica_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("read replica")]


async def test_edu_health_reports_an_unreachable_replica_as_down_and_stays_ready(
    cluster: Cluster,
) -> None:
    await migrate(cluster, DATABASE)
    nowhere = f"postgresql+asyncpg://{APP}@edu-review17b-nowhere.invalid:5432/{DATABASE}"
    closed = cluster.url(1, DATABASE, APP)  # nothing listens on port 1
    env = {**_settings(cluster), "EDU_DATABASE_REPLICA_URLS": f"{nowhere},{closed}"}
    code, out = await asyncio.wait_for(_health(env), 120)  # a hang guard, not a timing check
    assert "database: ok" in out, out
    lines = _replica_lines(out)
    assert len(lines) == 2, out
    assert all("DOWN" in line for line in lines), out
    assert code == 0, out  # a replica never makes the service unready
    assert "Traceback" not in out and "asyncpg" not in out and "SELECT" not in out, out


async def test_edu_health_does_not_call_a_standby_cut_off_from_its_primary_ok(
    cluster: Cluster,
) -> None:
    await migrate(cluster, DATABASE)
    port = cluster.standby_port
    conninfo = await superuser(cluster, port, "SHOW primary_conninfo")
    await superuser(cluster, port, "ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1'")
    await superuser(cluster, port, "SELECT pg_reload_conf()")
    try:
        for _ in range(600):  # the WAL receiver is gone
            if not await superuser(cluster, port, "SELECT count(*) FROM pg_stat_wal_receiver"):
                break
            await asyncio.sleep(0.05)
        _code, out = await asyncio.wait_for(_health(_settings(cluster)), 120)
    finally:
        quoted = conninfo.replace("'", "''")
        await superuser(cluster, port, f"ALTER SYSTEM SET primary_conninfo = '{quoted}'")
        await superuser(cluster, port, "SELECT pg_reload_conf()")
        await replayed(cluster, DATABASE)
    (line,) = _replica_lines(out)
    assert ": ok" not in line, out
