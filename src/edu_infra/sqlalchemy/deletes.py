"""What a delete does beyond its own row: cascades the caller must hear of, and the
caller's detached copy kept in step."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from edu_domain.model import ENTITY_TYPES, Entity, Organization
from edu_domain.ports import ChangeKind
from edu_infra.sqlalchemy.changes import ChangeLog, tenant_of
from edu_infra.sqlalchemy.mapping import table_of


async def forget_cascaded(session: AsyncSession, obj: Entity, changes: ChangeLog) -> None:
    """Before a hard delete of `obj`: drop the loaded objects ON DELETE CASCADE removes,
    and record every cascaded row as deleted (commit listeners invalidate them)."""
    for loaded in list(session.sync_session.identity_map.values()):
        if not isinstance(loaded, Entity) or loaded is obj:
            continue
        if _cascades_from(loaded, obj):
            changes.record(loaded, ChangeKind.DELETE)
            session.expunge(loaded)
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


def mirror(obj: Entity, detached: Entity) -> None:
    """Show a soft delete or restore done through `obj` on the caller's detached copy too
    (as the memory adapter, which writes through the caller's object); no history."""
    if detached is not obj:
        for name in _MIRRORED:
            set_committed_value(detached, name, getattr(obj, name))


__all__ = ["forget_cascaded", "mirror"]
