"""`UnitOfWork.import_rows` on SQL: plain rows checked by the entity's rules, written a
chunk at a time by the row path (COPY on PostgreSQL, executemany on SQLite).

No entity is built or tracked: what stays in memory is one chunk of rows and the change
records the commit listeners need. The unit of work runs this inside its write boundary,
so a bad row or a unique violation rolls the whole transaction back.
"""

from __future__ import annotations

from collections.abc import Iterable

from edu_domain.imports import chunks, rules_for
from edu_domain.model import Entity
from edu_domain.ports import ChangeKind
from edu_infra.sqlalchemy.changes import ChangeLog
from edu_infra.sqlalchemy.mapping import table_of
from edu_infra.sqlalchemy.rows import RowPath


async def import_rows(
    rows_path: RowPath, changes: ChangeLog, cls: type[Entity], rows: Iterable[object]
) -> int:
    """Check, stamp and write `rows` of `cls`; how many were written."""
    table_of(cls)
    rules = rules_for(cls)
    tenant_field = cls.__tenant_field__
    count = 0
    for chunk in chunks(rows):
        checked = [rules.check(row, changes.tenant) for row in chunk]
        for values in checked:
            changes.stamp_row(values)
            values["version"] = 1
        await rows_path.insert_rows(cls, checked)
        for values in checked:
            changes.record_row(cls, values["id"], values[tenant_field], ChangeKind.INSERT)
        count += len(checked)
    return count


__all__ = ["import_rows"]
