"""A SQL unit of work's identity map: the one object that knows where an entity lives.

An entity of a unit of work is in exactly one of two places:
- `loaded`: rows the driver path read or inserted, detached with their identity key and
  held weakly (a bulk insert keeps only what the caller keeps; a changed one is pinned until
  commit), until the session is needed;
- the session's own identity map (the ORM path, and any write that needs the session):
  `attach_loaded` moves the first into the second, without SQL.
`tracked` keeps alive what reads handed out, so their events and changes are seen at commit;
`inserted` remembers driver inserts, which are transient again after a rollback.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import class_mapper, object_session
from sqlalchemy.orm.base import instance_state

from edu_domain.model import DomainEvent, Entity
from edu_domain.model.base import KEEPER
from edu_infra.sqlalchemy.sa_internals import Pins, identity_class, mark_committed


class EntityBuilder(Protocol):
    """What `adopt` needs of a row loader (`loader.EntityLoader`)."""

    id_index: int

    def identity(self, id: Any) -> Any: ...
    def build(self, record: Any, identity: Any = None) -> Entity: ...
    def refresh(self, obj: Entity, record: Any) -> None: ...


_IDENTITY: dict[type[Entity], type[Any]] = {}


def identity_key(cls: type[Entity], id: Any) -> Any:
    """The session's identity key of the row `id` of `cls` (the mapper's own form)."""
    found = _IDENTITY.get(cls)
    if found is None:
        found = _IDENTITY[cls] = identity_class(class_mapper(cls))
    return (found, (id,), None)


def mark_persistent(entity: Entity, identity: Any) -> None:
    """What `make_transient_to_detached` does for a fully populated new entity, cheaply."""
    state = instance_state(entity)
    state.key = identity
    mark_committed(state, entity.__dict__)


class WeakRows:
    """identity -> entity, held weakly, as a `WeakValueDictionary` but cheaper to fill: a
    plain dict of callback-less weak references (no Python-level `__setitem__`, no removal
    callback per object). Dead entries are skipped when read and dropped once the map has
    grown to twice its live size, so a bulk load the caller lets go of stays small."""

    __slots__ = ("_limit", "_refs")

    def __init__(self) -> None:
        self._refs: dict[Any, weakref.ref[Entity]] = {}
        self._limit = _PURGE_AT

    def get(self, identity: Any) -> Entity | None:
        ref = self._refs.get(identity)
        return None if ref is None else ref()

    def __setitem__(self, identity: Any, obj: Entity) -> None:
        refs = self._refs
        refs[identity] = weakref.ref(obj)
        if len(refs) > self._limit:
            self._refs = {k: r for k, r in refs.items() if r() is not None}
            self._limit = max(_PURGE_AT, 2 * len(self._refs))

    def values(self) -> list[Entity]:
        """The live entities."""
        return [obj for ref in self._refs.values() if (obj := ref()) is not None]

    def __bool__(self) -> bool:
        """True when an entity may be held (dead ones not yet dropped count)."""
        return bool(self._refs)


_PURGE_AT = 1_024


class Identities:
    """Every entity a unit of work holds, the session made on first use, and their events."""

    def __init__(self, make_session: Callable[[], AsyncSession]) -> None:
        self._make_session = make_session
        self.session_obj: AsyncSession | None = None
        self.loaded: WeakRows = WeakRows()
        self.tracked: dict[int, Entity] = {}
        #: bulk-inserted entities, pinned from their first change (`bulk_inserted`)
        self.pins = Pins()
        self.inserted: weakref.WeakSet[Entity] = weakref.WeakSet()
        self.hard_deleted: list[Entity] = []
        #: events of bulk-inserted entities, taken at insert (they are not tracked)
        self.copied_events: list[DomainEvent] = []

    @property
    def session(self) -> AsyncSession:
        if self.session_obj is None:
            self.session_obj = self._make_session()
        return self.session_obj

    def track(self, obj: Any) -> Any:
        self.tracked[id(obj)] = obj
        return obj

    def known(self, identity: Any) -> Entity | None:
        found = self.loaded.get(identity)
        if found is None and self.session_obj is not None:
            found = self.session_obj.sync_session.identity_map.get(identity)
        return found

    def in_session(self, entity: Entity) -> bool:
        """True when `entity` is the session's own, live instance."""
        session = self.session_obj
        return (
            session is not None
            and object_session(entity) is session.sync_session
            and not instance_state(entity).deleted
        )

    def adopt(self, loader: EntityBuilder, record: Any, *, refresh: bool) -> Entity:
        """The unit of work's entity for a row: the one it already holds, or a new one."""
        identity = loader.identity(record[loader.id_index])
        existing = self.known(identity) if self.loaded or self.session_obj else None
        if existing is not None:
            if refresh:
                loader.refresh(existing, record)
            return existing
        obj = loader.build(record, identity)
        self._hold(obj, identity)
        return obj

    def adopt_all(self, loader: EntityBuilder, records: Sequence[Any]) -> list[Entity]:
        """`adopt` of each row of a read (no refresh), with the per-row lookups hoisted."""
        if self.session_obj is not None:
            return [self.adopt(loader, record, refresh=False) for record in records]
        loaded = self.loaded
        known = loaded.get if loaded else None
        identity_of, build, at = loader.identity, loader.build, loader.id_index
        entities: list[Entity] = []
        for record in records:
            identity = identity_of(record[at])
            obj = known(identity) if known is not None else None
            if obj is None:
                obj = build(record, identity)
                loaded[identity] = obj
            entities.append(obj)
        return entities

    def inserted_now(self, entity: Entity, identity: Any) -> None:
        """A row the driver just inserted: persistent, this unit of work's only object for it."""
        mark_persistent(entity, identity)
        self.inserted.add(entity)
        self._hold(entity, identity)

    def bulk_inserted(self, entity: Entity, identity: Any) -> None:
        """A row a bulk insert wrote: held weakly (a bulk load the caller drops costs no
        memory), and strongly from its first change until commit, so that a change made
        after `add_all` is written even if the caller lets go of the entity."""
        self.inserted_now(entity, identity)
        if self.session_obj is None:
            self.pins.watch(instance_state(entity))
            entity.__dict__[KEEPER] = self.pins.pin  # an event recorded later pins it too
        else:  # the session would let go of it at its next flush
            self.track(entity)

    def _hold(self, obj: Entity, identity: Any) -> None:
        if self.session_obj is not None:  # one object per row: the session has others
            self.session_obj.sync_session.add(obj)
        else:
            self.loaded[identity] = obj

    def attach_loaded(self) -> None:
        """Hand the entities the driver path loaded to the session (persistent, no SQL)."""
        if self.loaded:
            loaded, self.loaded = self.loaded.values(), WeakRows()
            sync = self.session.sync_session
            for obj in loaded:
                state = instance_state(obj)
                if state.deleted or state.was_deleted or state.key is None:
                    continue  # gone from the database: nothing to attach
                if sync.identity_map.get(state.key) is not None:
                    continue  # already the session's (see `adopt`)
                sync.add(obj)

    def gone(self, obj: Entity) -> bool:
        """True when `obj`'s row was hard-deleted in this transaction (by this or another
        object of the same row, e.g. one a stream's snapshot loaded again)."""
        state = instance_state(obj)
        if state.was_deleted:
            return True
        return any(instance_state(d).key == state.key for d in self.hard_deleted)

    def modified_loaded(self) -> list[Entity]:
        return [o for o in self.loaded.values() if instance_state(o).modified]

    def session_busy(self) -> bool:
        """True when the session has changes of its own to flush."""
        if self.session_obj is None:
            return False
        sync = self.session_obj.sync_session
        return bool(sync.new or sync.deleted or sync.dirty)

    def has_pending(self) -> bool:
        """True when a flush has work: session changes, or changed entities not yet attached."""
        return any(instance_state(o).modified for o in self.loaded.values()) or self.session_busy()

    def in_flight(self) -> tuple[list[Entity], list[Entity]]:
        """(written, deleted): the entities a failing flush may be about, newest last."""
        pending: list[Entity] = []
        deleting: list[Entity] = []
        if self.session_obj is not None:
            sync = self.session_obj.sync_session
            pending = [o for o in [*sync.new, *sync.dirty] if isinstance(o, Entity)]
            deleting = [o for o in sync.deleted if isinstance(o, Entity)]
        pending.extend(self.modified_loaded())
        return pending, deleting

    def held(self) -> list[Entity]:
        """Every entity in play (duplicates removed): what events and captures walk."""
        return list({id(o): o for o in self._every()}.values())

    def _every(self) -> list[Entity]:
        """Every entity in play, some perhaps twice."""
        every: list[object] = [*self.tracked.values(), *self.loaded.values(), *self.hard_deleted]
        if self.session_obj is not None:
            sync = self.session_obj.sync_session
            every.extend(sync.identity_map.values())
            every.extend(sync.new)
        return [o for o in every if isinstance(o, Entity)]

    def pull_events(self) -> list[DomainEvent]:
        events, self.copied_events = self.copied_events, []
        for obj in self.held():
            events.extend(obj.pull_events())
        return events

    def committed(self) -> None:
        self.pins.clear()
        self.hard_deleted = []
        self.inserted = weakref.WeakSet()

    def forget(self) -> list[Entity]:
        """Drop everything since the last commit (events too); the driver inserts, returned
        so that they can be made transient once the transaction is rolled back."""
        for obj in self._every():  # duplicates are harmless here: no event the second time
            if obj.has_events():
                obj.pull_events()
        self.loaded = WeakRows()
        self.tracked = {}
        self.copied_events = []
        self.hard_deleted = []
        self.pins.clear()
        inserted, self.inserted = list(self.inserted), weakref.WeakSet()
        return inserted


def make_transient(inserted: list[Entity]) -> None:
    """Rows a rollback removed: transient again, as SQLAlchemy does for its own."""
    for obj in inserted:
        state = instance_state(obj)
        if state.session_id is None:
            state.key = None


__all__ = ["Identities", "identity_key", "make_transient", "mark_persistent"]
