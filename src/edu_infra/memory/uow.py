"""The in-memory unit of work: the same contract as the SQL adapter, with no database.

This is the port's face: it checks arguments, evaluates queries (`evaluate.py`) over the
rows its transaction sees, and runs the after-commit work. The transaction
(`transaction.py`) holds the identity map and the uncommitted writes, laid over the shared
store (READ COMMITTED), and commits them, with the commit's outbox rows, in one synchronous
step. Every failed write rolls the whole transaction back, as PostgreSQL aborts a
transaction on its first failed statement.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar, cast
from uuid import UUID

import attrs

from edu_domain.errors import InvalidState, ReadOnlyError
from edu_domain.imports import check_rows
from edu_domain.model.base import Entity, identical
from edu_domain.ports import (
    AfterCommit,
    Clock,
    CommitListener,
    EventPublisher,
    UnitOfWork,
)
from edu_domain.query import (
    BoundQuery,
    Filter,
    Group,
    Page,
    Query,
    bind,
    encode_cursor,
)
from edu_domain.uow_checks import (
    check_actor,
    check_batch_size,
    check_callback,
    check_entities,
    check_entity,
    check_entity_class,
    check_flag,
    check_group_fields,
    check_id,
    check_lock,
    check_measures,
    check_query,
    check_read,
    check_tenant,
    undone_on_failure,
)
from edu_infra.consistency import ConsistencyToken
from edu_infra.memory.evaluate import (
    group_counts,
    matches,
    order_values,
    select,
)
from edu_infra.memory.outbox import InMemoryOutbox, new_rows
from edu_infra.memory.store import InMemoryStore, snapshot
from edu_infra.memory.transaction import Transaction
from edu_infra.outbox import EventRouting, OutboxRelay, RelaySettings
from edu_infra.system import SystemClock

E = TypeVar("E", bound=Entity)


class InMemoryUnitOfWork(UnitOfWork):
    """A unit of work over an `InMemoryStore`; open it with `InMemoryUnitOfWorkFactory`."""

    def __init__(
        self,
        store: InMemoryStore,
        *,
        tenant: UUID | None,
        actor: UUID | None,
        clock: Clock,
        routing: EventRouting,
        read_only: bool = False,
    ) -> None:
        self.tenant = tenant
        self.actor = actor
        self.read_only = read_only
        self._clock = clock
        self._routing = routing
        self._undelivered: list[UUID] = []
        self._tx = Transaction(store, clock, tenant=tenant, actor=actor)
        self._callbacks: list[AfterCommit] = []
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    async def begin(self) -> None:
        self._check_open()

    async def close(self) -> None:
        if not self._closed:
            self._discard()
            self._closed = True
            keys, self._undelivered = self._undelivered, []
            await self._routing.after_close(keys, self.tenant)

    async def rollback(self) -> None:
        self._check_open()
        self._discard()

    def after_commit(self, callback: AfterCommit) -> None:
        self._check_open()
        check_callback(callback)
        self._callbacks.append(callback)

    async def flush(self) -> None:
        with self._atomic():
            self._flush()

    async def commit(self) -> None:
        with self._atomic():
            self._flush()
            events = self._tx.pull_events()
            if events and self.read_only:  # events are outbox rows: a write
                raise ReadOnlyError()
            outgoing = self._routing.outgoing(events, self.tenant)
            changes = self._tx.check_and_apply(new_rows(outgoing.durable))
        self._tx.committed()
        callbacks, self._callbacks = self._callbacks, []
        keys = await self._routing.after_commit(callbacks, outgoing, changes, self.tenant)
        self._undelivered.extend(keys)

    # ------------------------------------------------------------------ reads

    async def get(
        self, cls: type[E], id: UUID, *, include_deleted: bool = False, lock: bool = False
    ) -> E | None:
        """`lock` is accepted and ignored: a memory commit is atomic and checks versions."""
        self._check_open()
        check_entity_class(cls)
        check_id(id)
        check_flag("include_deleted", include_deleted)
        check_lock(lock, read_only=self.read_only)
        await self.flush()
        tx = self._tx
        tracked = tx.tracked.get((cls, id))
        if tracked is not None:
            current = snapshot(tracked.entity)
            return cast(E, tracked.entity) if tx.sees(cls, current, include_deleted) else None
        row = tx.view().row((cls, id))
        if row is None or not tx.sees(cls, row, include_deleted):
            return None
        return tx.load(cls, row)

    async def find(
        self, cls: type[E], query: Query | None = None, *, include_deleted: bool = False
    ) -> Page[E]:
        self._check_open()
        bound = bind(check_read(cls, query, include_deleted), query)
        await self.flush()
        rows, more = select(bound, self._tx.rows(cls, include_deleted))
        cursor = None
        if more and rows:
            cursor = encode_cursor(cls, bound.ordering, order_values(rows[-1], bound.ordering))
        return Page(tuple(self._tx.load(cls, row) for row in rows), cursor)

    def stream(
        self, cls: type[E], query: Query | None = None, *, batch_size: int = 1_000
    ) -> AsyncIterator[E]:
        """Keyset batches of `batch_size`; the query's page is checked, then ignored."""
        self._check_open()
        check_entity_class(cls)
        check_query(query)
        check_batch_size(batch_size)
        bound = attrs.evolve(bind(cls, query), skip=0, limit=batch_size, after=None)
        return self._stream(cls, bound)

    async def _stream(self, cls: type[E], bound: BoundQuery) -> AsyncIterator[E]:
        after = None
        while True:
            self._check_open()
            await self.flush()
            rows, more = select(attrs.evolve(bound, after=after), self._tx.rows(cls, False))
            for row in rows:
                yield self._tx.load(cls, row)
            if not more:
                return
            after = order_values(rows[-1], bound.ordering)

    async def count(
        self, cls: type[E], query: Query | None = None, *, include_deleted: bool = False
    ) -> int:
        self._check_open()
        bound = bind(check_read(cls, query, include_deleted), query)
        await self.flush()
        return sum(matches(bound.filter, row) for row in self._tx.rows(cls, include_deleted))

    async def count_by(
        self,
        cls: type[E],
        by: Sequence[str],
        query: Query | None = None,
        *,
        measures: Mapping[str, Filter] | None = None,
    ) -> list[Group]:
        self._check_open()
        fields = check_group_fields(check_entity_class(cls), by)
        bound = bind(cls, check_query(query))
        bound_measures = check_measures(cls, measures)
        await self.flush()
        rows = (row for row in self._tx.rows(cls, False) if matches(bound.filter, row))
        return group_counts(rows, fields, bound_measures)

    # ------------------------------------------------------------------ writes

    async def add(self, entity: Entity) -> None:
        await self.add_all((entity,))

    async def add_all(self, entities: Iterable[Entity]) -> None:
        with self._atomic():
            batch = check_entities(entities)
            self._writable()
            self._tx.stage(batch)
            self._tx.flush()

    async def import_rows(self, cls: type[Entity], rows: Iterable[Mapping[str, Any]]) -> int:
        with self._atomic():
            checked = check_entity_class(cls)
            source = check_rows(rows)
            self._writable()
            self._flush()
            return self._tx.import_rows(checked, source)

    async def delete(self, entity: Entity, *, hard: bool = False) -> None:
        self._check_open()
        check_entity(entity)
        check_flag("hard", hard)
        with self._atomic(), undone_on_failure(entity):
            self._writable()
            tracked = self._tx.attach(entity)
            if hard:
                self._tx.flush()
                self._tx.hard_delete(tracked)
            else:
                if tracked.entity.deleted_at is None:
                    tracked.entity.deleted_at = self._clock.now()
                    tracked.entity.deleted_by = self.actor
                self._tx.flush()

    async def restore(self, entity: Entity) -> None:
        self._check_open()
        check_entity(entity)
        with self._atomic(), undone_on_failure(entity):
            self._writable()
            tracked = self._tx.attach(entity)
            if tracked.entity.deleted_at is not None:
                tracked.entity.deleted_at = None
                tracked.entity.deleted_by = None
            self._tx.flush()

    # ------------------------------------------------------------------ internals

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidState("this unit of work is closed")

    def _writable(self) -> None:
        if self.read_only:
            raise ReadOnlyError()

    def _flush(self) -> None:
        """Write pending changes; in a read-only unit of work, any is a ReadOnlyError."""
        if self.read_only and any(
            t.flushed is None or not identical(snapshot(t.entity), t.flushed)
            for t in self._tx.tracked.values()
        ):
            raise ReadOnlyError()
        self._tx.flush()

    @contextlib.contextmanager
    def _atomic(self) -> Iterator[None]:
        """Any failure inside discards the whole transaction (PostgreSQL aborts it too)."""
        self._check_open()
        try:
            yield
        except BaseException:
            self._discard()
            raise

    def _discard(self) -> None:
        self._tx.discard()
        self._callbacks = []


class InMemoryUnitOfWorkFactory:
    """Opens in-memory units of work over one store (a new empty store by default).

    With a publisher, committed events go through the store's outbox (`outbox`, delivered
    by `relay`; `outbox=None`: published directly after the commit, as before the outbox).
    """

    def __init__(
        self,
        store: InMemoryStore | None = None,
        *,
        clock: Clock | None = None,
        publisher: EventPublisher | None = None,
        listeners: Sequence[CommitListener] = (),
        outbox: RelaySettings | None = RelaySettings(),  # noqa: B008 (frozen value)
    ) -> None:
        self.store = store if store is not None else InMemoryStore()
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.publisher = publisher
        self.listeners = tuple(listeners)
        self.outbox = InMemoryOutbox(self.store.outbox)
        self.relay = (
            OutboxRelay(self.outbox, publisher, clock=self.clock, settings=outbox)
            if publisher is not None and outbox is not None
            else None
        )
        self.routing = EventRouting(publisher, self.relay, self.listeners, self.clock)

    def __call__(
        self,
        *,
        tenant: UUID,
        actor: UUID | None = None,
        read_only: bool = False,
        after: ConsistencyToken | str | None = None,
    ) -> InMemoryUnitOfWork:
        """`after` (a consistency token) is checked as on PostgreSQL; one store has nothing
        older to avoid."""
        return self._open(check_tenant(tenant), actor, read_only, after)

    def unscoped(
        self,
        *,
        actor: UUID | None = None,
        read_only: bool = False,
        after: ConsistencyToken | str | None = None,
    ) -> InMemoryUnitOfWork:
        return self._open(None, actor, read_only, after)

    def _open(
        self,
        tenant: UUID | None,
        actor: UUID | None,
        read_only: bool,
        after: ConsistencyToken | str | None,
    ) -> InMemoryUnitOfWork:
        check_actor(actor)
        check_flag("read_only", read_only)
        ConsistencyToken.coerce(after)
        return InMemoryUnitOfWork(
            self.store,
            tenant=tenant,
            actor=actor,
            clock=self.clock,
            routing=self.routing,
            read_only=read_only,
        )
