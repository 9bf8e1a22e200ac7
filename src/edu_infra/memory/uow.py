"""The in-memory unit of work: the same contract as the SQL adapter, with no database.

Each unit of work keeps its flushed but uncommitted rows in `writes`, laid over the shared
store when it reads (READ COMMITTED: the latest commits plus its own writes). Commit checks
constraints and versions against the store again and applies the writes in one synchronous
step, so no other task can interleave. Every failed write rolls the whole transaction back,
as PostgreSQL aborts a transaction on its first failed statement.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import TypeVar, cast
from uuid import UUID

import attrs
from attrs import define

from edu_domain.errors import (
    AlreadyExists,
    ConcurrencyConflict,
    InvalidState,
    NotFound,
    TenantViolation,
    ValidationError,
)
from edu_domain.model.base import DomainEvent, Entity, identical, validate_contents
from edu_domain.ports import (
    AfterCommit,
    Change,
    ChangeKind,
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
    check_measures,
    check_query,
    check_read,
    check_tenant,
)
from edu_domain.visibility import visible
from edu_infra.memory.evaluate import (
    group_counts,
    matches,
    order_values,
    select,
)
from edu_infra.memory.integrity import View, cascade, check_references, check_unique
from edu_infra.memory.store import (
    InMemoryStore,
    Key,
    Row,
    Writes,
    key_of,
    materialize,
    snapshot,
    tenant_of,
)
from edu_infra.system import SystemClock

E = TypeVar("E", bound=Entity)
logger = logging.getLogger("edu_infra")


@define
class _Tracked:
    """An attached entity, its row as last written or read, and the committed version read."""

    entity: Entity
    flushed: Row | None  # None: added, not yet written
    base: int | None  # None: inserted by this transaction


class InMemoryUnitOfWork(UnitOfWork):
    """A unit of work over an `InMemoryStore`; open it with `InMemoryUnitOfWorkFactory`."""

    def __init__(
        self,
        store: InMemoryStore,
        *,
        tenant: UUID | None,
        actor: UUID | None,
        clock: Clock,
        publisher: EventPublisher | None,
        listeners: Sequence[CommitListener],
    ) -> None:
        self.tenant = tenant
        self.actor = actor
        self._store = store
        self._clock = clock
        self._publisher = publisher
        self._listeners = tuple(listeners)
        self._tracked: dict[Key, _Tracked] = {}
        self._writes: Writes = {}
        self._expected: dict[Key, int] = {}  # committed version each written row must still have
        self._removed: list[Entity] = []  # hard-deleted this transaction: their events count
        self._callbacks: list[AfterCommit] = []
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    async def begin(self) -> None:
        self._check_open()

    async def close(self) -> None:
        if not self._closed:
            self._discard()
            self._closed = True

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
            changes = self._check_and_apply()
        for tracked in self._tracked.values():
            assert tracked.flushed is not None
            tracked.base = tracked.flushed["version"]
        events = self._pull_events()
        callbacks, self._callbacks = self._callbacks, []
        self._writes, self._expected, self._removed = {}, {}, []
        await self._notify(callbacks, events, changes)

    # ------------------------------------------------------------------ reads

    async def get(
        self, cls: type[E], id: UUID, *, include_deleted: bool = False, lock: bool = False
    ) -> E | None:
        """`lock` is accepted and ignored: a memory commit is atomic and checks versions."""
        self._check_open()
        check_entity_class(cls)
        check_id(id)
        check_flag("include_deleted", include_deleted)
        check_flag("lock", lock)
        await self.flush()
        tracked = self._tracked.get((cls, id))
        if tracked is not None:
            current = snapshot(tracked.entity)
            return cast(E, tracked.entity) if self._sees(cls, current, include_deleted) else None
        row = self._view().row((cls, id))
        if row is None or not self._sees(cls, row, include_deleted):
            return None
        return self._load(cls, row)

    async def find(
        self, cls: type[E], query: Query | None = None, *, include_deleted: bool = False
    ) -> Page[E]:
        self._check_open()
        bound = bind(check_read(cls, query, include_deleted), query)
        await self.flush()
        rows, more = select(bound, self._rows(cls, include_deleted))
        cursor = None
        if more and rows:
            cursor = encode_cursor(cls, bound.ordering, order_values(rows[-1], bound.ordering))
        return Page(tuple(self._load(cls, row) for row in rows), cursor)

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
            rows, more = select(attrs.evolve(bound, after=after), self._rows(cls, False))
            for row in rows:
                yield self._load(cls, row)
            if not more:
                return
            after = order_values(rows[-1], bound.ordering)

    async def count(
        self, cls: type[E], query: Query | None = None, *, include_deleted: bool = False
    ) -> int:
        self._check_open()
        bound = bind(check_read(cls, query, include_deleted), query)
        await self.flush()
        return sum(matches(bound.filter, row) for row in self._rows(cls, include_deleted))

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
        rows = (row for row in self._rows(cls, False) if matches(bound.filter, row))
        return group_counts(rows, fields, bound_measures)

    # ------------------------------------------------------------------ writes

    async def add(self, entity: Entity) -> None:
        await self.add_all((entity,))

    async def add_all(self, entities: Iterable[Entity]) -> None:
        with self._atomic():
            self._stage(check_entities(entities))
            self._flush()

    async def delete(self, entity: Entity, *, hard: bool = False) -> None:
        self._check_open()
        check_entity(entity)
        check_flag("hard", hard)
        with self._atomic():
            tracked = self._attach(entity)
            if hard:
                self._flush()
                self._hard_delete(tracked)
            else:
                if tracked.entity.deleted_at is None:
                    tracked.entity.deleted_at = self._clock.now()
                    tracked.entity.deleted_by = self.actor
                self._flush()

    async def restore(self, entity: Entity) -> None:
        self._check_open()
        check_entity(entity)
        with self._atomic():
            tracked = self._attach(entity)
            if tracked.entity.deleted_at is not None:
                tracked.entity.deleted_at = None
                tracked.entity.deleted_by = None
            self._flush()

    # ------------------------------------------------------------------ internals

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidState("this unit of work is closed")

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
        self._pull_events()
        self._tracked.clear()
        self._writes, self._expected, self._removed, self._callbacks = {}, {}, [], []

    def _pull_events(self) -> list[DomainEvent]:
        entities = [t.entity for t in self._tracked.values()] + self._removed
        return [event for entity in entities for event in entity.pull_events()]

    def _view(self) -> View:
        return View(self._store, self._writes)

    def _sees(self, cls: type[Entity], row: Row, include_deleted: bool) -> bool:
        return visible(cls, row, tenant=self.tenant, include_deleted=include_deleted)

    def _rows(self, cls: type[Entity], include_deleted: bool) -> list[Row]:
        rows = self._view().rows(cls).values()
        return [row for row in rows if self._sees(cls, row, include_deleted)]

    def _load(self, cls: type[E], row: Row) -> E:
        """The identity map's object for `row` (existing objects are not refreshed)."""
        key: Key = (cls, row["id"])
        tracked = self._tracked.get(key)
        if tracked is None:
            committed = self._store.row(key)
            base = None if committed is None else committed["version"]
            tracked = _Tracked(materialize(cls, row), row, base)
            self._tracked[key] = tracked
        return cast(E, tracked.entity)

    def _check_tenant(self, entity: Entity) -> None:
        cls = type(entity)
        if self.tenant is not None and getattr(entity, cls.__tenant_field__) != self.tenant:
            raise TenantViolation(f"{cls.__name__} {entity.id} belongs to another organization")

    def _attach(self, entity: Entity) -> _Tracked:
        """The tracking record of `entity`, attaching a detached copy of a stored row."""
        entity = check_entity(entity)
        self._check_tenant(entity)
        key = key_of(entity)
        tracked = self._tracked.get(key)
        if tracked is not None:
            if tracked.entity is not entity:
                raise InvalidState(f"another object for {key[0].__name__} {key[1]} is attached")
            return tracked
        row = self._view().row(key)
        if row is None or not self._sees(key[0], row, include_deleted=True):
            raise NotFound(key[0].__name__, key[1])
        tracked = _Tracked(entity, row, entity.version)
        self._tracked[key] = tracked
        return tracked

    def _stage(self, entities: list[Entity]) -> None:
        """Validate, stamp and attach new entities; `_flush` then writes them."""
        now = self._clock.now()
        view = self._view()
        new: dict[Key, Entity] = {}
        for item in entities:
            entity = check_entity(item)
            self._check_tenant(entity)
            key = key_of(entity)
            tracked = self._tracked.get(key)
            if tracked is not None and tracked.entity is entity:
                continue
            if key in new or tracked is not None or view.row(key) is not None:
                raise AlreadyExists(key[0].__name__, "id")
            new[key] = entity
        for key, entity in new.items():
            entity.created_at = entity.updated_at = now
            entity.created_by = entity.updated_by = self.actor
            entity.version = 1
            self._tracked[key] = _Tracked(entity, None, None)

    def _flush(self) -> None:
        """Write every new or changed tracked entity, stamping and versioning the changed."""
        now = None
        written: list[Key] = []
        for key, tracked in self._tracked.items():
            row = snapshot(tracked.entity)
            if tracked.flushed is not None and identical(row, tracked.flushed):
                continue
            validate_contents(tracked.entity)  # as the SQL adapters do at every write
            if tracked.flushed is not None:
                self._check_identity(key, row, tracked.flushed)
                self._check_not_stale(key, tracked)
                now = now or self._clock.now()
                tracked.entity.updated_at = now
                tracked.entity.updated_by = self.actor
                tracked.entity.version = tracked.flushed["version"] + 1
                row = snapshot(tracked.entity)
            self._writes[key] = tracked.flushed = row
            written.append(key)
        if written:
            view = self._view()
            check_unique(view, written)
            check_references(view, written)

    def _check_identity(self, key: Key, row: Row, before: Row) -> None:
        cls = key[0]
        field = cls.__tenant_field__
        if row[field] != before[field]:
            raise TenantViolation(f"{cls.__name__} {key[1]} cannot move to another organization")
        if row["id"] != before["id"]:
            raise ValidationError("id", "the id of a stored entity cannot change")

    def _check_not_stale(self, key: Key, tracked: _Tracked) -> None:
        if tracked.base is None:
            return
        committed = self._store.row(key)
        if committed is None or committed["version"] != tracked.base:
            raise ConcurrencyConflict(key[0].__name__, key[1])
        self._expected[key] = tracked.base

    def _hard_delete(self, tracked: _Tracked) -> None:
        key = key_of(tracked.entity)
        self._check_not_stale(key, tracked)
        for doomed in cascade(self._view(), [key]):
            self._writes[doomed] = None
            gone = self._tracked.pop(doomed, None)
            if gone is not None:
                self._removed.append(gone.entity)

    def _check_and_apply(self) -> list[Change]:
        """Check the writes against the latest commits, then apply them (no await: atomic)."""
        for key, version in self._expected.items():
            committed = self._store.row(key)
            if committed is None or committed["version"] != version:
                raise ConcurrencyConflict(key[0].__name__, key[1])
        deleted = [key for key, row in self._writes.items() if row is None]
        for key in cascade(self._view(), deleted):
            self._writes[key] = None
        live = [key for key, row in self._writes.items() if row is not None]
        for key in live:
            if key not in self._expected and self._store.row(key) is not None:
                raise AlreadyExists(key[0].__name__, "id")
        view = self._view()
        check_unique(view, live)
        check_references(view, live)
        changes = [change for change in map(self._change, self._writes.items()) if change]
        self._store.apply(self._writes)
        return changes

    def _change(self, item: tuple[Key, Row | None]) -> Change | None:
        (cls, id_), row = item
        before = self._store.row((cls, id_))
        if row is None:
            if before is None:
                return None
            return Change(cls, id_, tenant_of(cls, before), ChangeKind.DELETE)
        kind = ChangeKind.INSERT if before is None else ChangeKind.UPDATE
        return Change(cls, id_, tenant_of(cls, row), kind)

    async def _notify(
        self, callbacks: list[AfterCommit], events: list[DomainEvent], changes: list[Change]
    ) -> None:
        """After-commit work; the commit already happened, so failures are only logged."""
        for callback in callbacks:
            try:
                await callback()
            except Exception:
                logger.exception("after-commit callback failed")
        if events and self._publisher is not None:
            try:
                await self._publisher.publish(events)
            except Exception:
                logger.exception("publishing domain events failed")
        if changes:
            for listener in self._listeners:
                try:
                    await listener.committed(changes)
                except Exception:
                    logger.exception("commit listener failed")


class InMemoryUnitOfWorkFactory:
    """Opens in-memory units of work over one store (a new empty store by default)."""

    def __init__(
        self,
        store: InMemoryStore | None = None,
        *,
        clock: Clock | None = None,
        publisher: EventPublisher | None = None,
        listeners: Sequence[CommitListener] = (),
    ) -> None:
        self.store = store if store is not None else InMemoryStore()
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.publisher = publisher
        self.listeners = tuple(listeners)

    def __call__(self, *, tenant: UUID, actor: UUID | None = None) -> InMemoryUnitOfWork:
        return self._open(check_tenant(tenant), actor)

    def unscoped(self, *, actor: UUID | None = None) -> InMemoryUnitOfWork:
        return self._open(None, actor)

    def _open(self, tenant: UUID | None, actor: UUID | None) -> InMemoryUnitOfWork:
        check_actor(actor)
        return InMemoryUnitOfWork(
            self.store,
            tenant=tenant,
            actor=actor,
            clock=self.clock,
            publisher=self.publisher,
            listeners=self.listeners,
        )
