"""Read-your-writes on a read replica: no read is ever older than a token it was given.

- A property under concurrent writes: writers commit and read back in their own call chain,
  readers in other "requests" read with the token handed to them, while replay on the
  standby is paused and resumed; every read is checked against the version its token proves.
- Within one EduCore call chain the token flows by itself, and never into another chain.
- Across requests the example service carries it in the `Edu-Consistency` header.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any
from uuid import UUID

import pytest

from edu_domain.errors import NotFound
from edu_domain.model import User
from edu_domain.services import NewContent, NewUser, Scope
from edu_infra.consistency import read_your_writes
from edu_infra.container import build_container, shutdown
from tests.e2e.api import running_api
from tests.e2e.stack import container_core
from tests.replica.cluster import Cluster
from tests.replica.support import APP, migrate, opened, replayed, superuser, with_users
from tests.sql_harness import RLS_KEY

pytestmark = pytest.mark.postgres

DATABASE = "edu_ryw"
WRITERS, STEPS, READERS = 4, 50, 2


async def _pause(cluster: Cluster, paused: bool) -> None:
    call = "pg_wal_replay_pause()" if paused else "pg_wal_replay_resume()"
    await superuser(cluster, cluster.standby_port, f"SELECT {call}")


async def test_no_read_is_older_than_its_token_under_concurrent_writes(cluster: Cluster) -> None:
    """Each writer owns one user row: its version after a commit is exactly what a read
    given that commit's token must see at least (and, in the writer's chain, exactly)."""
    rng = random.Random(17)
    async with opened(cluster, DATABASE, replica_wait=0.1) as factory:
        org, users = await with_users(factory, WRITERS)
        handed: asyncio.Queue[tuple[str, int, int] | None] = asyncio.Queue()
        writes, checked = [0], [0]
        progress = asyncio.Condition()
        pause_writes = {8, 70, 150}  # pause after these many writes, resume 6 writes later

        async def writer(index: int) -> None:
            user_id = users[index].id
            for step in range(STEPS):
                with read_your_writes() as chain:  # one request
                    async with factory(tenant=org) as uow:
                        user = await uow.require(User, user_id)
                        user.full_name = f"w{index}s{step}"
                        await uow.commit()
                        version = user.version
                    async with progress:
                        writes[0] += 1
                        progress.notify_all()
                    async with factory(tenant=org, read_only=True) as uow:
                        seen = await uow.require(User, user_id)
                    assert (seen.version, seen.full_name) == (version, f"w{index}s{step}")
                    checked[0] += 1
                    assert chain.token is not None
                    await handed.put((str(chain.token), index, version))
                if rng.random() < 0.3:
                    await asyncio.sleep(0)

        async def reader() -> None:
            while (item := await handed.get()) is not None:
                token, index, version = item
                with read_your_writes(token):  # the next request, sending the token back
                    async with factory(tenant=org, read_only=True) as uow:
                        seen = await uow.require(User, users[index].id)
                assert seen.version >= version
                checked[0] += 1

        async def lag() -> None:
            for start in sorted(pause_writes):
                async with progress:
                    await progress.wait_for(lambda: writes[0] >= start)  # noqa: B023
                await _pause(cluster, True)
                paused_at = writes[0]  # (writes went on while the pause was being asked for)
                async with progress:
                    await progress.wait_for(
                        lambda: writes[0] >= min(paused_at + 6, WRITERS * STEPS)  # noqa: B023
                    )
                await _pause(cluster, False)

        readers = [asyncio.create_task(reader()) for _ in range(READERS)]
        try:
            await asyncio.gather(lag(), *(writer(i) for i in range(WRITERS)))
        finally:
            await _pause(cluster, False)
            for _ in readers:
                await handed.put(None)
            await asyncio.gather(*readers)
        reasons = Counter()
        for (_, reason), n in factory.database.replicas.reads.items():  # type: ignore[union-attr]
            reasons[reason] += n
        print(f"\nread-your-writes property: {checked[0]} reads checked, {writes[0]} writes,"
              f" routes {dict(reasons)}")  # fmt: skip
        assert checked[0] == 2 * WRITERS * STEPS
        assert reasons["replica"] + reasons["waited"] > 0  # replicas served tokens
        assert reasons["behind_token"] > 0  # paused replay: the primary did


def _core_settings(cluster: Cluster, **extra: str) -> dict[str, str]:
    return {
        "EDU_DATABASE_URL": cluster.url(cluster.primary_port, DATABASE, APP),
        "EDU_DATABASE_APP_ROLE": APP,
        "EDU_RLS_KEY": RLS_KEY,
        "EDU_DATABASE_REPLICA_URLS": cluster.url(cluster.standby_port, DATABASE, APP),
        "EDU_DATABASE_REPLICA_WAIT_MS": "20",
        "EDU_DATABASE_REPLICA_MAX_LAG": "600",
        "EDU_DATABASE_REPLICA_RETRY": "0.05",
        "EDU_CACHE_ENABLED": "false",
        "EDU_ARGON2_TIME_COST": "1",
        "EDU_ARGON2_MEMORY_KIB": "8",
        "EDU_ARGON2_PARALLELISM": "1",
        **extra,
    }


def _reads(core: Any) -> Counter[tuple[str, str]]:
    replicas = core.deps.uow.database.replicas
    return Counter(replicas.reads)


async def test_an_educore_call_chain_reads_its_own_writes_and_no_other_chain_gets_its_token(
    cluster: Cluster,
) -> None:
    await migrate(cluster, DATABASE)
    container = build_container(_core_settings(cluster))
    core = container.core()
    try:
        org = await core.organizations.create("Replica School")
        await replayed(cluster, DATABASE)
        registered = asyncio.Event()
        ids: list[UUID] = []

        async def writer_request() -> User:  # no scope opened: the chain starts by itself
            account = await core.users.register(
                Scope.system(org.id),
                NewUser(email="ann@ex.org", username="ann", password="pw-123456"),
            )
            ids.append(account.user.id)
            registered.set()
            return await core.users.get(Scope.system(org.id), account.user.id)

        async def other_request() -> str:
            await registered.wait()
            try:
                await core.users.get(Scope.system(org.id), ids[0])
            except NotFound:
                return "not yet on the replica"
            return "found"

        await _pause(cluster, True)
        try:
            own, other = await asyncio.gather(writer_request(), other_request())
        finally:
            await _pause(cluster, False)
        assert own.username == "ann"
        assert other == "not yet on the replica", _reads(core)  # the token stayed in its chain
        reads = _reads(core)
        assert reads[("primary", "behind_token")] == 1  # the writer's get
        assert reads[("replica-1", "replica")] == 1  # the other chain's get, stale but allowed

        with read_your_writes() as chain:
            content = await core.content.create_draft(
                Scope.system(org.id), NewContent(title="Fractions", author_id=own.id)
            )
            assert chain.token is not None
            found = await core.content.search(Scope.system(org.id), _search("Fractions"))
            stats = await core.users.statistics(Scope.system(org.id))
        assert [c.id for c in found.items] == [content.id]
        assert stats.total == 1
        assert not any(
            target == "primary" and reason != "behind_token" for target, reason in _reads(core)
        )
    finally:
        await shutdown(container)


def _search(text: str) -> Any:
    from edu_domain.services import ContentSearch

    return ContentSearch(text=text)


async def test_with_a_shared_cache_loads_read_the_primary(cluster: Cluster) -> None:
    """A value put into a cache every instance reads must not come from a lagging replica."""
    await migrate(cluster, DATABASE)
    container = build_container(_core_settings(cluster, EDU_CACHE_ENABLED="true"))
    core = container.core()
    try:
        org = await core.organizations.create("Cached School")
        account = await core.users.register(
            Scope.system(org.id), NewUser(email="bob@ex.org", username="bob", password="pw-123456")
        )
        user = await core.users.get(Scope.system(org.id), account.user.id)  # a miss: loaded, cached
        assert user.id == account.user.id
        assert _reads(core)[("primary", "primary_required")] == 1
    finally:
        await shutdown(container)


async def test_the_example_service_hands_the_token_back_in_a_header(cluster: Cluster) -> None:
    await migrate(cluster, DATABASE)
    async with running_api(lambda: container_core(_core_settings(cluster))) as api:
        admin = await api.bootstrap("header-school")
        await replayed(cluster, DATABASE)
        await _pause(cluster, True)
        try:
            created = await api.client.post(
                "/content", headers=admin.auth, json={"title": "Decimals", "body": "Text."}
            )
            assert created.status_code == 201, created.text
            token = created.headers["Edu-Consistency"]
            path = f"/content/{created.json()['id']}"
            fresh = await api.client.get(path, headers={**admin.auth, "Edu-Consistency": token})
            stale = await api.client.get(path, headers=admin.auth)
            bad = await api.client.get(path, headers={**admin.auth, "Edu-Consistency": "x"})
        finally:
            await _pause(cluster, False)
        assert fresh.status_code == 200, fresh.text
        assert fresh.headers["Edu-Consistency"] == token
        assert stale.status_code == 404  # a paused replica, no token: allowed to be behind
        assert "Edu-Consistency" not in stale.headers
        assert (bad.status_code, bad.json()["field"]) == (422, "Edu-Consistency")
