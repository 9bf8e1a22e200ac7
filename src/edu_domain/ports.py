"""The ports: what the domain needs from the outside world, and nothing about how.

The cache port lives in `edu_domain.caching` with the read-through helpers built on it.

`UnitOfWork` is the one gateway to persistence (no repository classes): identity map,
change tracking and the transaction in one object, opened per task for one tenant and actor.
Adapters: `edu_infra.memory` (fakes for tests), `edu_infra.sqlalchemy` (PostgreSQL, SQLite).
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar, runtime_checkable
from uuid import UUID

import attrs
from attrs import frozen

from edu_domain.errors import NotFound, ValidationError
from edu_domain.model.base import DomainEvent, Entity
from edu_domain.query import Filter, Group, Page, Query, Tally

E = TypeVar("E", bound=Entity)
AfterCommit = Callable[[], Awaitable[None]]


class UnitOfWork(abc.ABC):
    """One transaction's view of persistence, scoped to a tenant (or explicitly unscoped).

    Reads see only the tenant's live rows (soft-deleted ones on request). Entities returned
    are tracked: change their attributes, then `commit`. Leaving the block without commit
    rolls back. `add` writes at once, so a uniqueness or reference error surfaces at the
    `add`; changes to tracked entities are flushed before the next read and at commit.
    """

    tenant: UUID | None
    actor: UUID | None
    #: opened with `read_only=True`: every write is a `ReadOnlyError` (and, where the adapter
    #: has read replicas, the reads may be served by one)
    read_only: bool = False

    async def __aenter__(self) -> Self:
        await self.begin()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @abc.abstractmethod
    async def begin(self) -> None:
        """Start the transaction (called by `async with`)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Roll back anything not committed and release resources."""

    @abc.abstractmethod
    async def get(
        self, cls: type[E], id: UUID, *, include_deleted: bool = False, lock: bool = False
    ) -> E | None:
        """The entity, or None if missing, of another tenant, or soft-deleted.

        `lock=True` reads the latest committed row and holds it until the transaction ends
        (SELECT ... FOR UPDATE), so a read-modify-write such as a counter never conflicts.
        Adapters without row locks may ignore it: their commit still detects conflicts.
        """

    @abc.abstractmethod
    async def find(
        self, cls: type[E], query: Query | None = None, *, include_deleted: bool = False
    ) -> Page[E]:
        """The matching entities in the query's order, one page at a time."""

    @abc.abstractmethod
    def stream(
        self, cls: type[E], query: Query | None = None, *, batch_size: int = 1_000
    ) -> AsyncIterator[E]:
        """All matching live entities in order, fetched in batches (bounded memory)."""

    @abc.abstractmethod
    async def count(
        self, cls: type[E], query: Query | None = None, *, include_deleted: bool = False
    ) -> int:
        """How many entities match (the query's page is ignored)."""

    @abc.abstractmethod
    async def count_by(
        self,
        cls: type[E],
        by: Sequence[str],
        query: Query | None = None,
        *,
        measures: Mapping[str, Filter] | None = None,
    ) -> list[Group]:
        """Counts grouped by fields, plus per-group counts of rows matching each measure.

        One statement on SQL adapters. Groups come sorted by key; empty groups are absent.
        """

    async def tally(
        self,
        cls: type[E],
        by: Sequence[str],
        query: Query | None = None,
        *,
        measures: Mapping[str, Filter] | None = None,
        totals: Mapping[str, tuple[type[Entity], Query | None]] | None = None,
    ) -> Tally:
        """`count_by`, plus the count of each of `totals` (name -> entity class, query).

        A report reads all its numbers at once: the SQL adapters send one statement (a
        second only when `cls` has no rows at all). This default runs `count_by` and one
        `count` per total.
        """
        checked = check_totals(totals)
        groups = await self.count_by(cls, by, query, measures=measures)
        counted = {name: await self.count(other, q) for name, other, q in checked}
        return Tally(tuple(groups), counted)

    @abc.abstractmethod
    async def add(self, entity: Entity) -> None:
        """Insert a new entity now; stamps created_at/by and the version."""

    @abc.abstractmethod
    async def add_all(self, entities: Iterable[Entity]) -> None:
        """Insert many at once by the fastest path the adapter has; all or nothing."""

    @abc.abstractmethod
    async def import_rows(self, cls: type[Entity], rows: Iterable[Mapping[str, Any]]) -> int:
        """Insert plain rows (field name -> value) of `cls` by the fastest path; the count.

        Each row is checked by the entity's own rules (`edu_domain.imports`) without building
        an entity; id and defaults are filled as the constructor fills them, audit fields
        stamped as by `add`, the organization is the unit of work's (a row naming another is
        a TenantViolation). Rows are read lazily and not tracked, so memory stays flat; later
        reads see them. All or nothing: any bad row, unknown field or unique violation (in
        the batch or against stored rows) is a domain error and the transaction rolls back.
        """

    @abc.abstractmethod
    async def delete(self, entity: Entity, *, hard: bool = False) -> None:
        """Soft delete (stamps deleted_at/by) or, with hard=True, remove the row."""

    @abc.abstractmethod
    async def restore(self, entity: Entity) -> None:
        """Undo a soft delete; fails with AlreadyExists if its unique keys were reused."""

    @abc.abstractmethod
    async def flush(self) -> None:
        """Write pending changes without committing (errors surface here)."""

    @abc.abstractmethod
    async def commit(self) -> None:
        """Make every change durable and visible, in the same transaction as the outbox rows
        of its durable events; then run after-commit callbacks (and deliver the events)."""

    @abc.abstractmethod
    async def rollback(self) -> None:
        """Discard every change since the last commit; after-commit callbacks are dropped."""

    @abc.abstractmethod
    def after_commit(self, callback: AfterCommit) -> None:
        """Run `callback` once the current transaction commits; never on rollback."""

    async def require(self, cls: type[E], id: UUID, *, include_deleted: bool = False) -> E:
        """Like `get`, but a missing entity is `NotFound`."""
        entity = await self.get(cls, id, include_deleted=include_deleted)
        if entity is None:
            raise NotFound(cls.__name__, id)
        return entity

    async def first(
        self, cls: type[E], query: Query | None = None, *, include_deleted: bool = False
    ) -> E | None:
        """The first match of the query's order, or None."""
        query = query or Query()
        first_only = attrs.evolve(query, limit=1) if query.cursor else query.page(query.skip, 1)
        page = await self.find(cls, first_only, include_deleted=include_deleted)
        return page.items[0] if page.items else None


class ChangeKind(StrEnum):
    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"


@frozen
class Change:
    """One entity written by a committed unit of work (soft delete and restore are updates)."""

    entity: type[Entity]
    id: UUID
    organization_id: UUID | None
    kind: ChangeKind


class CommitListener(Protocol):
    """Told which entities a unit of work changed, after (and only after) it committed.

    The cache invalidates through this, so read paths never see data older than a commit.
    """

    async def committed(self, changes: Sequence[Change]) -> None: ...


def check_totals(
    totals: Mapping[str, tuple[type[Entity], Query | None]] | None,
) -> list[tuple[str, type[Entity], Query | None]]:
    """`tally`'s totals as (name, class, query), or ValidationError."""
    if totals is None:
        return []
    if not isinstance(totals, Mapping):
        raise ValidationError("totals", "must map names to (entity class, query)")
    checked: list[tuple[str, type[Entity], Query | None]] = []
    for name, spec in totals.items():
        if not isinstance(name, str) or not name:
            raise ValidationError("totals", "total names must be non-empty strings")
        if not (isinstance(spec, tuple) and len(spec) == 2):
            raise ValidationError("totals", f"{name}: expects (entity class, query)")
        other, query = spec
        if not (isinstance(other, type) and issubclass(other, Entity)):
            raise ValidationError("totals", f"{name}: not an entity class")
        if query is not None and not isinstance(query, Query):
            raise ValidationError("totals", f"{name}: must be a Query")
        checked.append((name, other, query))
    return checked


class UnitOfWorkFactory(Protocol):
    """Opens units of work. Never share one unit of work between tasks or requests."""

    def __call__(
        self,
        *,
        tenant: UUID,
        actor: UUID | None = None,
        read_only: bool = False,
        after: Any = None,
    ) -> UnitOfWork:
        """A unit of work that sees and writes only `tenant`'s rows.

        `read_only=True`: it only reads (any write is a `ReadOnlyError`), so an adapter may
        serve it from a read replica, never older than the caller's own committed writes,
        nor than `after`: a consistency token (`edu_infra.consistency`; an adapter without
        replicas checks its form and has nothing older to avoid).
        """
        ...

    def unscoped(
        self, *, actor: UUID | None = None, read_only: bool = False, after: Any = None
    ) -> UnitOfWork:
        """A unit of work across all tenants, for system work (provisioning, jobs)."""
        ...


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class IdGenerator(Protocol):
    def new_id(self) -> UUID:
        """A new, time-ordered id (UUIDv7)."""
        ...


class TokenGenerator(Protocol):
    def new_secret(self) -> str:
        """A fresh URL-safe random secret (at least 256 bits)."""
        ...


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, password: str, hashed: str) -> bool:
        """Constant-time check; False (never an exception) for a malformed hash."""
        ...

    def needs_rehash(self, hashed: str) -> bool:
        """True when the hash uses an outdated algorithm or parameters."""
        ...


@runtime_checkable
class OffloadingPasswordHasher(PasswordHasher, Protocol):
    """A hasher that runs its slow work off the event loop (e.g. in a bounded thread pool).

    The use cases prefer these methods when a hasher has them, so a burst of logins does not
    stall every other request of the process.
    """

    async def hash_async(self, password: str) -> str: ...

    async def verify_async(self, password: str, hashed: str) -> bool: ...


class Notifier(Protocol):
    """Delivers mail to users (verification and reset links).

    The token is a credential: send it to the address, never log it. A notifier that also
    has `send_mail` (a `MailSender`) is given the whole `Mail` instead.
    """

    async def send_email_verification(self, email: str, token: str, expires_at: datetime) -> None:
        """Mail the token that `core.verification.verify_email(scope, token)` consumes."""
        ...

    async def send_password_reset(self, email: str, token: str, expires_at: datetime) -> None:
        """Mail the token that `core.auth.reset_password(scope, token, new)` consumes."""
        ...


class MailKind(StrEnum):
    EMAIL_VERIFICATION = "email_verification"
    PASSWORD_RESET = "password_reset"  # noqa: S105 (a kind of mail, not a secret)


@frozen(kw_only=True)
class Mail:
    """A mail a use case asked for, with the tenant it belongs to (links need it: tokens do
    not name their organization).

    `idempotency_key` (from the outbox, the same on every attempt) names the mail: a sender
    can make it the Message-ID, so that a mail sent twice is recognisably one mail.
    """

    kind: MailKind
    organization_id: UUID
    user_id: UUID
    email: str = attrs.field(repr=False)
    token: str = attrs.field(repr=False)
    expires_at: datetime
    idempotency_key: str | None = None


@runtime_checkable
class MailSender(Protocol):
    """A Notifier that takes the whole `Mail`; `EventDispatcher` then calls only this."""

    async def send_mail(self, mail: Mail) -> None: ...


class EventPublisher(Protocol):
    """Receives domain events after the commit that produced them.

    A publisher may also have `durable(event) -> bool` (which events must reach it at least
    once: those go through the outbox; the rest are published after the commit, best
    effort; without the method every event is durable) and `deliver(envelope)`
    (`EnvelopePublisher`: one event with its idempotency key, as the outbox relay delivers).
    """

    async def publish(self, events: Sequence[DomainEvent]) -> None: ...


@frozen(kw_only=True)
class Envelope:
    """One committed domain event as the outbox relay delivers it: at least once.

    `key` names the event and is the same on every attempt: a consumer that remembers the
    keys it handled can drop a repeat. `attempt` counts from 1.
    """

    key: UUID
    organization_id: UUID
    event: DomainEvent
    attempt: int = 1


@runtime_checkable
class EnvelopePublisher(Protocol):
    """A publisher that takes one event with its idempotency key (the relay prefers it)."""

    async def deliver(self, envelope: Envelope) -> None:
        """Deliver one event; raise to have the relay try again later."""
        ...
