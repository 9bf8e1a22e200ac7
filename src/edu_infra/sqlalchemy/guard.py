"""The one place the SQL adapter builds the tenant and soft-delete predicates.

Every path calls it: the ORM's loader criteria (`session.py`), the driver path's compiled
statements (`reads.py`), and the unit of work's criteria for executemany statements. The
rule itself is `edu_domain.visibility`; the tenant comes either as a bound parameter named
TENANT_PARAM (cached statements: the value is never part of the SQL) or as a value.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam

from edu_domain.model import Entity
from edu_domain.visibility import DELETED_FIELD, tenant_field
from edu_infra.sqlalchemy.mapping import column_of

#: The bound parameter carrying the unit of work's tenant in cached statements.
TENANT_PARAM = "edu_tenant"
#: Pass as `tenant` for the bound-parameter form.
BOUND = object()


def predicates(
    cls: type[Entity], *, tenant: Any, include_deleted: bool
) -> list[ColumnElement[bool]]:
    """The filter of `cls` (an empty list: none): `tenant` is None (unscoped), BOUND
    (the parameter TENANT_PARAM), or the tenant's id."""
    parts: list[ColumnElement[bool]] = []
    if tenant is not None:
        column = column_of(cls, tenant_field(cls))
        value = bindparam(TENANT_PARAM, type_=column.type) if tenant is BOUND else tenant
        parts.append(column == value)
    if not include_deleted:
        parts.append(column_of(cls, DELETED_FIELD).is_(None))
    return parts


def criteria(cls: Any, *, tenant: Any, include_deleted: bool) -> ColumnElement[bool] | None:
    """`predicates` as one clause (None: no filter, or not an entity)."""
    if not (isinstance(cls, type) and issubclass(cls, Entity)):
        return None
    parts = predicates(cls, tenant=tenant, include_deleted=include_deleted)
    return and_(*parts) if parts else None


__all__ = ["BOUND", "TENANT_PARAM", "criteria", "predicates"]
