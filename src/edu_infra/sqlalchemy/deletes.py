"""What a delete does beyond its own row: cascades the caller must hear of, and the
caller's detached copy kept in step."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.base import instance_state

from edu_domain.model import ENTITY_TYPES, Entity, Organization
from edu_domain.ports import ChangeKind
from edu_infra.sqlalchemy.changes import ChangeLog, tenant_of
from edu_infra.sqlalchemy.mapping import table_of
from edu_infra.sqlalchemy.sa_internals import mark_committed


async def forget_cascaded(session: AsyncSession, obj: Entity, changes: ChangeLog) -> None:
    """Before a hard delete of `obj`: drop the loaded objects ON DELETE CASCADE removes,
    and record every cascaded row as deleted (commit listeners invalidate them)."""
    for loaded in list(session.sync_session.identity_map.values()):
        if not isinstance(loaded, Entity) or loaded is obj:
            continue
        if _cascades_from(loaded, obj):
            changes.record(loaded, ChangeKind.DELETE)
            session.expunge(loaded)
    if isinstance(obj, Organization):  # every row of the organization goes with it
        for cls in ENTITY_TYPES:
            if cls.__tenant_field__ == "organization_id":
                table = table_of(cls)
                stmt = select(table.c.id).where(table.c.organization_id == obj.id)
                for row in (await session.execute(stmt)).all():
                    changes.record_row(cls, row[0], obj.id, ChangeKind.DELETE)
        return
    for cls in ENTITY_TYPES:
        for ref in cls.__references__:
            if ref.target is type(obj) and ref.on_delete == "cascade":
                table = table_of(cls)
                stmt = select(table.c.id, table.c.organization_id).where(
                    table.c[ref.field] == obj.id,
                    table.c.organization_id == tenant_of(obj),
                )
                for row in (await session.execute(stmt)).all():
                    changes.record_row(cls, row[0], row[1], ChangeKind.DELETE)


def _cascades_from(loaded: Entity, deleted: Entity) -> bool:
    if isinstance(deleted, Organization):
        return tenant_of(loaded) == deleted.id
    return any(
        ref.target is type(deleted)
        and ref.on_delete == "cascade"
        and getattr(loaded, ref.field) == deleted.id
        and tenant_of(loaded) == tenant_of(deleted)
        for ref in type(loaded).__references__
    )


_MIRRORED = ("deleted_at", "deleted_by", "updated_at", "updated_by", "version")


def adopt_changes(obj: Entity, detached: Entity) -> None:
    """Give `obj` the changes the caller made to its detached copy since it was loaded, so
    a delete or restore through the copy writes them too (as the memory adapter, which
    writes through the caller's object)."""
    values = detached.__dict__
    for name in list(instance_state(detached).committed_state):
        if name in values and name not in _MIRRORED:
            setattr(obj, name, values[name])


def mirror(obj: Entity, detached: Entity) -> None:
    """Show a soft delete or restore done through `obj` on the caller's detached copy too
    (as the memory adapter, which writes through the caller's object); the copy is then
    in step with the row: no pending change."""
    if detached is not obj:
        for name in _MIRRORED:
            set_committed_value(detached, name, getattr(obj, name))
        mark_committed(instance_state(detached), detached.__dict__)


__all__ = ["adopt_changes", "forget_cascaded", "mirror"]
