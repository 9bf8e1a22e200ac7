"""P7: peak RSS of one edu-core job, in its own interpreter (run by bench/run.py).

    python bench/memory.py bulk_100k|import_100k|stream_100k APP_URL ORG_ID COUNT

Prints one JSON line: peak RSS (VmHWM) in MB, the baseline after imports and setup,
rows, seconds.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
import uuid
from typing import Any

from dataset import RLS_KEY

from edu_domain.model import User
from edu_domain.query import Query
from edu_infra.sqlalchemy import Database, DatabaseSettings, SqlUnitOfWorkFactory

BATCH = 10_000


def peak_mb() -> float:
    """This process's peak RSS in MB: VmHWM, which exec resets.

    `getrusage(RUSAGE_SELF).ru_maxrss` is the fallback only: Linux carries the high-water
    mark of the forked parent (the benchmark, 150+ MB) over the exec into it.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def bulk(factory: SqlUnitOfWorkFactory, org: uuid.UUID, count: int) -> int:
    """`count` users in one unit of work, handed over `BATCH` at a time."""
    hashed = "fast$v2$1$" + "0" * 64
    async with factory(tenant=org) as uow:
        for start in range(0, count, BATCH):
            await uow.add_all(
                User(
                    organization_id=org,
                    email=f"mem{i}@memory.example",
                    username=f"mem{i}",
                    hashed_password=hashed,
                    full_name=f"Memory User {i}",
                )
                for i in range(start, min(count, start + BATCH))
            )
        await uow.commit()
    return count


async def import_rows(factory: SqlUnitOfWorkFactory, org: uuid.UUID, count: int) -> int:
    """`count` plain rows from one generator through `uow.import_rows`, one commit (P4)."""
    hashed = "fast$v2$1$" + "0" * 64
    rows = (
        {
            "organization_id": org,
            "email": f"imp{i}@memory.example",
            "username": f"imp{i}",
            "hashed_password": hashed,
            "full_name": f"Imported User {i}",
        }
        for i in range(count)
    )
    async with factory(tenant=org) as uow:
        done: int = await uow.import_rows(User, rows)  # type: ignore[attr-defined]
        await uow.commit()
    return done


async def stream(factory: SqlUnitOfWorkFactory, org: uuid.UUID) -> int:
    seen = 0
    async with factory(tenant=org) as uow:
        async for _user in uow.stream(User, Query().order_by("created_at", "id"), batch_size=1_000):
            seen += 1
    return seen


async def main(kind: str, url: str, org_id: str, count: int) -> dict[str, Any]:
    database = Database(DatabaseSettings(url=url, pool_size=1, max_overflow=0, rls_key=RLS_KEY))
    try:
        factory = SqlUnitOfWorkFactory(database)
        org = uuid.UUID(org_id)
        async with factory(tenant=org) as uow:  # connect and warm the mappers first
            await uow.count(User)
        baseline = peak_mb()
        started = time.perf_counter()
        jobs = {
            "bulk_100k": lambda: bulk(factory, org, count),
            "import_100k": lambda: import_rows(factory, org, count),
            "stream_100k": lambda: stream(factory, org),
        }
        rows = await jobs[kind]()
        return {
            "peak_mb": round(peak_mb(), 1),
            "baseline_mb": round(baseline, 1),
            "rows": rows,
            "seconds": round(time.perf_counter() - started, 2),
        }
    finally:
        await database.dispose()


if __name__ == "__main__":
    result = asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
    print(json.dumps(result))
