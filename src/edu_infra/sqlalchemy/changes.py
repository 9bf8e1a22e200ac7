"""A SQL unit of work's write rules and change records, shared by both row paths and the
ORM events: one place that stamps, checks the tenant of a write, and records what changed
for commit listeners."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy.orm import make_transient
from sqlalchemy.orm.base import PASSIVE_NO_INITIALIZE, instance_state

from edu_domain.errors import AlreadyExists, TenantViolation, ValidationError
from edu_domain.model import Entity
from edu_domain.model.base import validate_contents
from edu_domain.ports import Change, ChangeKind, Clock
from edu_infra.sqlalchemy.identity import Identities, identity_key
from edu_infra.sqlalchemy.mapping import table_of


def tenant_of(entity: Entity) -> UUID:
    value = getattr(entity, type(entity).__tenant_field__)
    assert isinstance(value, UUID)
    return value


def _moved_tenant(entity: Entity) -> bool:
    """True when a persistent entity's organization_id was changed (never allowed)."""
    state = instance_state(entity)
    if state.key is None or type(entity).__tenant_field__ != "organization_id":
        return False
    return bool(state.get_history("organization_id", PASSIVE_NO_INITIALIZE).deleted)


def _changed_id(entity: Entity) -> bool:
    state = instance_state(entity)
    return state.key is not None and bool(state.get_history("id", PASSIVE_NO_INITIALIZE).deleted)


class ChangeLog:
    """Stamps and checks writes for one tenant (or none) and one actor; records changes."""

    def __init__(self, *, tenant: UUID | None, actor: UUID | None, clock: Clock) -> None:
        self.tenant = tenant
        self.actor = actor
        self.clock = clock
        self._changes: dict[tuple[type[Entity], UUID], Change] = {}

    def check_write(self, entity: Entity) -> None:
        """A tenant unit of work writes only its own organization's entities; ids stay."""
        if _changed_id(entity):  # as the memory adapter says it
            raise ValidationError("id", "the id of a stored entity cannot change")
        if _moved_tenant(entity):
            raise TenantViolation(f"{type(entity).__name__} {entity.id} cannot change organization")
        if self.tenant is not None and tenant_of(entity) != self.tenant:
            raise TenantViolation(
                f"{type(entity).__name__} {entity.id} belongs to another organization"
            )

    def check_new(self, entity: Entity, held: Identities) -> None:
        """A new entity of this tenant, valid, and not a row the unit of work holds."""
        cls = type(entity)
        table_of(cls)
        if not isinstance(entity, Entity):
            raise ValidationError("entity", "not an entity")
        self.check_write(entity)
        validate_contents(entity)
        state = instance_state(entity)
        if state.was_deleted:  # hard-deleted: its row is gone, so it may be added again
            make_transient(entity)
        if state.key is not None or state.session_id is not None:
            raise AlreadyExists(cls.__name__, "id")
        if held.known(identity_key(cls, entity.id)) is not None:
            raise AlreadyExists(cls.__name__, "id")

    def check_batch(self, batch: Sequence[Entity], held: Identities) -> None:
        """`check_new` for each of a bulk insert (no id twice), then stamp them all."""
        seen: set[tuple[type[Entity], UUID]] = set()
        for entity in batch:
            self.check_new(entity, held)
            key = (type(entity), entity.id)
            if key in seen:
                raise AlreadyExists(type(entity).__name__, "id")
            seen.add(key)
        for entity in batch:
            self.stamp_insert(entity)

    def stamp_insert(self, entity: Entity) -> None:
        # a new entity is transient: its __dict__ is what the INSERT or COPY reads, and
        # there is no history to keep (the values are the clock's and the actor's)
        self.stamp_row(entity.__dict__)

    def stamp_row(self, values: dict[str, Any]) -> None:
        """Stamp a new row's values (an entity's `__dict__`, or an imported row's)."""
        now = self.clock.now()
        values["created_at"] = values["updated_at"] = now
        values["created_by"] = values["updated_by"] = self.actor

    def stamp_update(self, entity: Entity) -> None:
        entity.updated_at = self.clock.now()
        entity.updated_by = self.actor

    def record(self, entity: Entity, kind: ChangeKind) -> None:
        self.record_row(type(entity), entity.id, tenant_of(entity), kind)

    def record_row(self, cls: type[Entity], id: UUID, tenant: UUID, kind: ChangeKind) -> None:
        """One change per row, as seen from the last commit (what the memory adapter reports):
        an insert stays an insert until deleted, then it is no change; a row deleted and
        inserted again is an update; an update of a new or deleted row changes nothing."""
        key = (cls, id)
        previous = self._changes.get(key)
        if previous is None:
            self._changes[key] = Change(cls, id, tenant, kind)
        elif kind is ChangeKind.DELETE:
            if previous.kind is ChangeKind.INSERT:
                del self._changes[key]
            else:
                self._changes[key] = Change(cls, id, tenant, kind)
        elif kind is ChangeKind.INSERT and previous.kind is ChangeKind.DELETE:
            self._changes[key] = Change(cls, id, tenant, ChangeKind.UPDATE)

    def take(self) -> list[Change]:
        changes, self._changes = list(self._changes.values()), {}
        return changes

    def clear(self) -> None:
        self._changes = {}


__all__ = ["ChangeLog", "tenant_of"]
