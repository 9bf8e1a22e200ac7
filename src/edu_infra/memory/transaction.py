"""One in-memory unit of work's transaction: its identity map, its writes, its commit.

The unit of work (`uow.py`) checks arguments, runs queries and notifies after commit; this
holds what it changes. Flushed but uncommitted rows are kept in `writes`, laid over the
shared store when reading (READ COMMITTED: the latest commits plus its own writes). Commit
checks constraints and versions against the store again and applies the writes in one
synchronous step, so no other task can interleave.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar, cast
from uuid import UUID

from attrs import define

from edu_domain.errors import (
    AlreadyExists,
    ConcurrencyConflict,
    InvalidState,
    NotFound,
    TenantViolation,
    ValidationError,
)
from edu_domain.imports import chunks, rules_for
from edu_domain.model.base import DomainEvent, Entity, identical, validate_contents
from edu_domain.ports import Change, ChangeKind, Clock
from edu_domain.uow_checks import check_entity
from edu_domain.visibility import visible
from edu_infra.memory.integrity import View, cascade, check_references, check_unique
from edu_infra.memory.outbox import OutboxRow
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

E = TypeVar("E", bound=Entity)


@define
class Tracked:
    """An attached entity, its row as last written or read, and the committed version read."""

    entity: Entity
    flushed: Row | None  # None: added, not yet written
    base: int | None  # None: inserted by this transaction


class Transaction:
    """The tracked entities and uncommitted writes of one unit of work over a store."""

    def __init__(
        self, store: InMemoryStore, clock: Clock, *, tenant: UUID | None, actor: UUID | None
    ) -> None:
        self.tenant = tenant
        self.actor = actor
        self.store = store
        self.clock = clock
        self.tracked: dict[Key, Tracked] = {}
        self.writes: Writes = {}
        self.expected: dict[Key, int] = {}  # committed version each written row must still have
        self.removed: list[Entity] = []  # hard-deleted this transaction: their events count

    # ------------------------------------------------------------------ state

    def discard(self) -> None:
        """Forget everything this transaction did (its entities' events too). Entities keep
        the caller's values, but their version goes back to the committed one: the rolled
        back flush never happened, so a later write of them is not a conflict."""
        self.pull_events()
        for tracked in self.tracked.values():
            if tracked.base is not None and tracked.entity.version != tracked.base:
                tracked.entity.version = tracked.base
        self.tracked.clear()
        self.writes, self.expected, self.removed = {}, {}, []

    def pull_events(self) -> list[DomainEvent]:
        entities = [t.entity for t in self.tracked.values()] + self.removed
        return [event for entity in entities for event in entity.pull_events()]

    def committed(self) -> list[DomainEvent]:
        """After `check_and_apply`: the flushed rows are now the committed ones; the events."""
        for tracked in self.tracked.values():
            assert tracked.flushed is not None
            tracked.base = tracked.flushed["version"]
        events = self.pull_events()
        self.writes, self.expected, self.removed = {}, {}, []
        return events

    # ------------------------------------------------------------------ reads

    def view(self) -> View:
        return View(self.store, self.writes)

    def sees(self, cls: type[Entity], row: Row, include_deleted: bool) -> bool:
        return visible(cls, row, tenant=self.tenant, include_deleted=include_deleted)

    def rows(self, cls: type[Entity], include_deleted: bool) -> list[Row]:
        rows = self.view().rows(cls).values()
        return [row for row in rows if self.sees(cls, row, include_deleted)]

    def load(self, cls: type[E], row: Row) -> E:
        """The identity map's object for `row` (existing objects are not refreshed)."""
        key: Key = (cls, row["id"])
        tracked = self.tracked.get(key)
        if tracked is None:
            committed = self.store.row(key)
            base = None if committed is None else committed["version"]
            tracked = Tracked(materialize(cls, row), row, base)
            self.tracked[key] = tracked
        return cast(E, tracked.entity)

    # ------------------------------------------------------------------ writes

    def _check_tenant(self, entity: Entity) -> None:
        cls = type(entity)
        if self.tenant is not None and getattr(entity, cls.__tenant_field__) != self.tenant:
            raise TenantViolation(f"{cls.__name__} {entity.id} belongs to another organization")

    def attach(self, entity: Entity) -> Tracked:
        """The tracking record of `entity`, attaching a detached copy of a stored row."""
        entity = check_entity(entity)
        self._check_tenant(entity)
        key = key_of(entity)
        tracked = self.tracked.get(key)
        if tracked is not None:
            if tracked.entity is not entity:
                raise InvalidState(f"another object for {key[0].__name__} {key[1]} is attached")
            return tracked
        row = self.view().row(key)
        if row is None or not self.sees(key[0], row, include_deleted=True):
            raise NotFound(key[0].__name__, key[1])
        tracked = Tracked(entity, row, entity.version)
        self.tracked[key] = tracked
        return tracked

    def stage(self, entities: list[Entity]) -> None:
        """Validate, stamp and attach new entities; `flush` then writes them."""
        now = self.clock.now()
        view = self.view()
        new: dict[Key, Entity] = {}
        for item in entities:
            entity = check_entity(item)
            self._check_tenant(entity)
            key = key_of(entity)
            tracked = self.tracked.get(key)
            if tracked is not None and tracked.entity is entity:
                continue
            if key in new or tracked is not None or view.row(key) is not None:
                raise AlreadyExists(key[0].__name__, "id")
            new[key] = entity
        for key, entity in new.items():
            entity.created_at = entity.updated_at = now
            entity.created_by = entity.updated_by = self.actor
            entity.version = 1
            self.tracked[key] = Tracked(entity, None, None)

    def import_rows(self, cls: type[Entity], rows: Iterable[object]) -> int:
        """Check, stamp and write plain rows (`UnitOfWork.import_rows`): no entity is built
        or tracked; constraints are checked once all are written, as a statement would."""
        rules = rules_for(cls)
        keys: list[Key] = []
        for chunk in chunks(rows):
            checked = [rules.check(row, self.tenant) for row in chunk]
            now = self.clock.now()
            view = self.view()
            for values in checked:
                key: Key = (cls, values["id"])
                if key in self.tracked or view.row(key) is not None:
                    raise AlreadyExists(cls.__name__, "id")
                values["created_at"] = values["updated_at"] = now
                values["created_by"] = values["updated_by"] = self.actor
                values["version"] = 1
                self.writes[key] = values
                keys.append(key)
        if keys:
            view = self.view()
            check_unique(view, keys)
            check_references(view, keys)
        return len(keys)

    def flush(self) -> None:
        """Write every new or changed tracked entity, stamping and versioning the changed."""
        now = None
        written: list[Key] = []
        for key, tracked in self.tracked.items():
            row = snapshot(tracked.entity)
            if tracked.flushed is not None and identical(row, tracked.flushed):
                continue
            validate_contents(tracked.entity)  # as the SQL adapters do at every write
            if tracked.flushed is not None:
                self._check_identity(key, row, tracked.flushed)
                self._check_not_stale(key, tracked)
                now = now or self.clock.now()
                tracked.entity.updated_at = now
                tracked.entity.updated_by = self.actor
                tracked.entity.version = tracked.flushed["version"] + 1
                row = snapshot(tracked.entity)
            self.writes[key] = tracked.flushed = row
            written.append(key)
        if written:
            view = self.view()
            check_unique(view, written)
            check_references(view, written)

    def _check_identity(self, key: Key, row: Row, before: Row) -> None:
        cls = key[0]
        field = cls.__tenant_field__
        if row[field] != before[field]:
            raise TenantViolation(f"{cls.__name__} {key[1]} cannot move to another organization")
        if row["id"] != before["id"]:
            raise ValidationError("id", "the id of a stored entity cannot change")

    def _check_not_stale(self, key: Key, tracked: Tracked) -> None:
        if tracked.base is None:
            return
        committed = self.store.row(key)
        if committed is None or committed["version"] != tracked.base:
            raise ConcurrencyConflict(key[0].__name__, key[1])
        self.expected[key] = tracked.base

    def hard_delete(self, tracked: Tracked) -> None:
        key = key_of(tracked.entity)
        self._check_not_stale(key, tracked)
        for doomed in cascade(self.view(), [key]):
            self.writes[doomed] = None
            gone = self.tracked.pop(doomed, None)
            if gone is not None:
                self.removed.append(gone.entity)

    # ------------------------------------------------------------------ commit

    def check_and_apply(self, outbox: Sequence[OutboxRow] = ()) -> list[Change]:
        """Check the writes against the latest commits, then apply them and the commit's
        outbox rows (no await: atomic)."""
        for key, version in self.expected.items():
            committed = self.store.row(key)
            if committed is None or committed["version"] != version:
                raise ConcurrencyConflict(key[0].__name__, key[1])
        deleted = [key for key, row in self.writes.items() if row is None]
        for key in cascade(self.view(), deleted):
            self.writes[key] = None
        live = [key for key, row in self.writes.items() if row is not None]
        for key in live:
            if key not in self.expected and self.store.row(key) is not None:
                raise AlreadyExists(key[0].__name__, "id")
        view = self.view()
        check_unique(view, live)
        check_references(view, live)
        changes = [change for change in map(self._change, self.writes.items()) if change]
        self.store.apply(self.writes, outbox)
        return changes

    def _change(self, item: tuple[Key, Row | None]) -> Change | None:
        (cls, id_), row = item
        before = self.store.row((cls, id_))
        if row is None:
            if before is None:
                return None
            return Change(cls, id_, tenant_of(cls, before), ChangeKind.DELETE)
        kind = ChangeKind.INSERT if before is None else ChangeKind.UPDATE
        return Change(cls, id_, tenant_of(cls, row), kind)
