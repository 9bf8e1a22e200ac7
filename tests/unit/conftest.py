"""Use-case tests run against the in-memory adapters with deterministic ports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from attrs import define

from edu_domain.model import Organization, UserRole
from edu_domain.services import Deps, EduCore, EventDispatcher, NewUser, Scope, SecurityPolicy
from edu_domain.services.views import UserAccount
from edu_infra.memory import InMemoryStore, InMemoryUnitOfWorkFactory
from edu_infra.memory.fakes import (
    FastHasher,
    ManualClock,
    RecordingNotifier,
    RecordingPublisher,
    SequentialTokens,
)
from edu_infra.system import Uuid7Generator

POLICY = SecurityPolicy(max_failed_logins=3, lockout=timedelta(minutes=10))
PASSWORD = "correct horse battery"


@define
class World:
    """One in-memory edu-core with its test doubles and a ready organization."""

    core: EduCore
    store: InMemoryStore
    clock: ManualClock
    notifier: RecordingNotifier
    events: RecordingPublisher
    hasher: FastHasher
    org: Organization

    def state(self) -> dict[object, dict[str, object]]:
        """Every committed row, copied: compare before/after to prove nothing changed."""
        return {key: dict(self.store.row(key) or {}) for key in self.store}

    @property
    def scope(self) -> Scope:
        """The system acting for the organization (setting up; the table does not apply)."""
        return Scope.system(self.org.id)

    async def new_org(self, name: str = "Other School") -> Organization:
        return await self.core.organizations.create(name)

    async def user(
        self,
        username: str = "alice",
        *,
        org: Organization | None = None,
        role: UserRole = UserRole.STUDENT,
        verified: bool = True,
        password: str = PASSWORD,
    ) -> UserAccount:
        scope = Scope.system((org or self.org).id)
        account = await self.core.users.register(
            scope,
            NewUser(
                email=f"{username}@example.org",
                username=username,
                password=password,
                role=role,
                full_name=username.title(),
            ),
        )
        if verified:
            await self.core.verification.mark_verified(scope, account.user.id)
        return account


def build_world_parts(
    policy: SecurityPolicy = POLICY,
) -> tuple[EduCore, InMemoryStore, ManualClock, RecordingNotifier, RecordingPublisher, FastHasher]:
    clock = ManualClock()
    store = InMemoryStore()
    notifier = RecordingNotifier()
    events = RecordingPublisher()
    hasher = FastHasher()
    factory = InMemoryUnitOfWorkFactory(
        store, clock=clock, publisher=EventDispatcher(notifier, [events])
    )
    deps = Deps(
        uow=factory,
        clock=clock,
        ids=Uuid7Generator(),
        tokens=SequentialTokens(),
        hasher=hasher,
        policy=policy,
    )
    return EduCore(deps), store, clock, notifier, events, hasher


async def make_world(policy: SecurityPolicy = POLICY) -> World:
    core, store, clock, notifier, events, hasher = build_world_parts(policy)
    org = await core.organizations.create("Springfield Elementary")
    return World(core, store, clock, notifier, events, hasher, org)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    return await make_world()
