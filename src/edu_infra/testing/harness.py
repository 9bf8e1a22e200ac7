"""What the unit-of-work contract suite runs against: one `Harness` per adapter.

An adapter's harness module yields a `Harness` from an async context manager (see
`memory_harness`; `tests/sql_harness.py` provides `sqlite_harness` and `postgres_harness`).
The builders create organizations through an unscoped unit of work and everything else
through the organization's own, then clear the recorders so tests see only their own work.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, TypeVar
from uuid import UUID

from attrs import define

from edu_domain.model import (
    EducationalContent,
    LoginSession,
    Organization,
    User,
    UserProfile,
)
from edu_domain.model.base import Entity
from edu_domain.ports import UnitOfWork, UnitOfWorkFactory
from edu_infra.memory import (
    InMemoryUnitOfWorkFactory,
    ManualClock,
    RecordingCommitListener,
    RecordingPublisher,
)
from edu_infra.outbox import OutboxRelay

E = TypeVar("E", bound=Entity)
_serial = itertools.count(1)


def unique_name(prefix: str) -> str:
    """A name no other test of this process uses (databases may be shared between tests)."""
    return f"{prefix}-{next(_serial)}"


def new_org(**fields: Any) -> Organization:
    slug = fields.get("slug") or unique_name("org")
    return Organization(**{"name": slug.title(), "slug": slug, **fields})


def new_user(org: Organization | UUID, **fields: Any) -> User:
    name = fields.get("username") or unique_name("user")
    defaults = {
        "organization_id": org.id if isinstance(org, Organization) else org,
        "username": name,
        "email": f"{name}@example.org",
        "hashed_password": "fast$v2$1$00",
    }
    return User(**{**defaults, **fields})


def new_content(org: Organization, author: User, **fields: Any) -> EducationalContent:
    slug = fields.get("slug") or unique_name("lesson")
    defaults = {
        "organization_id": org.id,
        "author_id": author.id,
        "title": slug.replace("-", " ").title(),
        "slug": slug,
        "body": "Some text.",
    }
    return EducationalContent(**{**defaults, **fields})


def new_session(user: User, clock: ManualClock, **fields: Any) -> LoginSession:
    defaults = {
        "organization_id": user.organization_id,
        "user_id": user.id,
        "jti": unique_name("jti"),
        "token_hash": "h" * 64,
        "expires_at": clock.now() + timedelta(days=1),
    }
    return LoginSession(**{**defaults, **fields})


def new_profile(user: User, **fields: Any) -> UserProfile:
    return UserProfile(**{"organization_id": user.organization_id, "user_id": user.id, **fields})


@define
class Harness:
    """An adapter's unit-of-work factory with the fakes it was wired with.

    `relay`: the factory's outbox relay (its `store` is the outbox), for `OutboxContract`.
    """

    name: str
    factory: UnitOfWorkFactory
    clock: ManualClock
    publisher: RecordingPublisher
    listener: RecordingCommitListener
    relay: OutboxRelay | None = None

    def uow(self, org: Organization | UUID, actor: User | UUID | None = None) -> UnitOfWork:
        tenant = org.id if isinstance(org, Organization) else org
        return self.factory(tenant=tenant, actor=actor.id if isinstance(actor, User) else actor)

    def reader(
        self, org: Organization | UUID | None, actor: User | UUID | None = None
    ) -> UnitOfWork:
        """A read-only unit of work (`read_only=True`) for `org`, or unscoped for None: where
        the adapter has read replicas, it may read on one."""
        actor_id = actor.id if isinstance(actor, User) else actor
        if org is None:
            return self.factory.unscoped(actor=actor_id, read_only=True)
        tenant = org.id if isinstance(org, Organization) else org
        return self.factory(tenant=tenant, actor=actor_id, read_only=True)

    def reset_recorders(self) -> None:
        self.publisher.events.clear()
        self.listener.clear()
        self.publisher.envelopes.clear()

    async def make_org(self, **fields: Any) -> Organization:
        org = new_org(**fields)
        async with self.factory.unscoped() as uow:
            await uow.add(org)
            await uow.commit()
        self.reset_recorders()
        return org

    async def make_user(self, org: Organization, **fields: Any) -> User:
        return await self._save(org, new_user(org, **fields))

    async def make_content(
        self, org: Organization, author: User, **fields: Any
    ) -> EducationalContent:
        return await self._save(org, new_content(org, author, **fields))

    async def make_session(self, user: User, **fields: Any) -> LoginSession:
        return await self._save(user.organization_id, new_session(user, self.clock, **fields))

    async def _save(self, org: Organization | UUID, entity: E) -> E:
        async with self.uow(org) as uow:
            await uow.add(entity)
            await uow.commit()
        self.reset_recorders()
        return entity


@asynccontextmanager
async def memory_harness() -> AsyncIterator[Harness]:
    clock, publisher, listener = ManualClock(), RecordingPublisher(), RecordingCommitListener()
    factory = InMemoryUnitOfWorkFactory(clock=clock, publisher=publisher, listeners=[listener])
    yield Harness("memory", factory, clock, publisher, listener, factory.relay)
