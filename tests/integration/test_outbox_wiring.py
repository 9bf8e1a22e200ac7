"""The outbox as the container wires it: settings, the relay's lifecycle, `edu outbox`."""

from __future__ import annotations

import argparse
import asyncio
import os

import pytest
from dependency_injector import providers

from edu_domain.model import UserDeleted
from edu_domain.services import NewUser, Scope
from edu_infra.cli import OperatorError, _outbox
from edu_infra.container import build_container, open_core, relay_of, shutdown, start
from edu_infra.memory.fakes import RecordingNotifier, RecordingPublisher
from edu_infra.outbox import RelaySettings
from edu_infra.settings import ConfigurationError, Settings
from edu_infra.sqlalchemy import Database, DatabaseSettings, SqlUnitOfWorkFactory
from edu_infra.testing.harness import new_org, new_user
from tests.sql_harness import fresh_sqlite_url

MEMORY = {
    "EDU_DATABASE_URL": "memory://",
    "EDU_ARGON2_TIME_COST": "1",
    "EDU_ARGON2_MEMORY_KIB": "8",
    "EDU_ARGON2_PARALLELISM": "1",
}
NEW = NewUser(email="o@example.org", username="outbox", password="long enough 1")


async def test_open_core_runs_the_relay_loop_and_stops_it_on_exit() -> None:
    async with open_core(MEMORY) as (core, _):
        relay = core.deps.uow.relay  # type: ignore[attr-defined]
        assert relay.running
    assert not relay.running


async def test_without_the_outbox_events_are_published_after_the_commit() -> None:
    notifier = RecordingNotifier()
    async with open_core({**MEMORY, "EDU_OUTBOX_ENABLED": "false"}, notifier=notifier) as (core, _):
        assert core.deps.uow.relay is None  # type: ignore[attr-defined]
        org = await core.organizations.create("School")
        await core.users.register(Scope.system(org.id), NEW)
        assert [m.kind for m in notifier.sent] == ["verify"]


async def test_with_inline_delivery_off_the_running_relay_sends_the_mail() -> None:
    notifier = RecordingNotifier()
    container = build_container({**MEMORY, "EDU_OUTBOX_INLINE": "false"})
    container.notifier.override(providers.Object(notifier))
    try:
        core = container.core()
        await start(container)
        org = await core.organizations.create("School")
        await core.users.register(Scope.system(org.id), NEW)  # the commit wakes the relay
        for _ in range(500):  # a bounded wait for the relay's round
            if notifier.sent:
                break
            await asyncio.sleep(0.01)
        assert [m.kind for m in notifier.sent] == ["verify"]
    finally:
        await shutdown(container)


async def test_a_worker_process_setting_leaves_the_loop_to_edu_relay() -> None:
    container = build_container({**MEMORY, "EDU_OUTBOX_RELAY": "false"})
    try:
        container.core()
        await start(container)
        relay = relay_of(container)
        assert relay is not None and not relay.running
    finally:
        await shutdown(container)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("EDU_OUTBOX_BATCH_SIZE", "0"),
        ("EDU_OUTBOX_LEASE_SECONDS", "0"),
        ("EDU_OUTBOX_MAX_ATTEMPTS", "zero"),
        ("EDU_OUTBOX_INLINE", "maybe"),
    ],
)
def test_bad_outbox_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_mapping({name: value})


def test_the_outbox_settings_reach_the_relay() -> None:
    settings = Settings.from_mapping(
        {"EDU_OUTBOX_MAX_ATTEMPTS": "4", "EDU_OUTBOX_LEASE_SECONDS": "30", "EDU_OUTBOX_INLINE": "0"}
    )
    assert settings.outbox is not None
    assert (settings.outbox.max_attempts, settings.outbox.lease.total_seconds()) == (4, 30.0)
    assert not settings.outbox.inline
    assert Settings.from_mapping({"EDU_OUTBOX_ENABLED": "false"}).outbox is None


async def test_edu_outbox_lists_and_requeues_dead_letters(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = await fresh_sqlite_url()
    database = Database(DatabaseSettings(url=url))
    failing = RecordingPublisher(failure=RuntimeError("down"))
    factory = SqlUnitOfWorkFactory(
        database, publisher=failing, outbox=RelaySettings(max_attempts=1)
    )
    org = new_org()
    user = new_user(org)
    user.record(UserDeleted(organization_id=org.id, user_id=user.id, hard=False))
    async with factory.unscoped() as uow:
        await uow.add(org)
        await uow.add(user)
        await uow.commit()  # the one attempt fails: a dead letter at once
    await database.dispose()
    key = failing.envelopes[0].key
    for name in [n for n in os.environ if n.startswith("EDU_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("EDU_DATABASE_URL", url)

    await _outbox(argparse.Namespace(action="dead", limit=10))
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith(f"{key}  {org.id}  UserDeleted  attempts=1")
    assert line.endswith("error=RuntimeError")
    with pytest.raises(OperatorError, match="--all"):
        await _outbox(argparse.Namespace(action="retry", keys=[], all=False))
    await _outbox(argparse.Namespace(action="retry", keys=[str(key)], all=False))
    await _outbox(argparse.Namespace(action="status"))
    assert capsys.readouterr().out.splitlines() == ["requeued: 1", "pending: 1, dead: 0"]
