"""The rule every read of every adapter applies: a tenant-scoped unit of work sees only its
organization's rows, and only live ones unless it asks for soft-deleted ones too.

The memory adapter, and the SQL adapter's identity-map hits, evaluate it here; the SQL
adapter compiles the same rule (`edu_infra.sqlalchemy.guard`) from the same two fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from edu_domain.model.base import Entity

#: The field a soft delete sets; a row without it is live.
DELETED_FIELD = "deleted_at"


def tenant_field(cls: type[Entity]) -> str:
    """The field that names a row's organization (`id` for organizations themselves)."""
    return cls.__tenant_field__


def visible(
    cls: type[Entity], values: Mapping[str, Any], *, tenant: UUID | None, include_deleted: bool
) -> bool:
    """Whether a row with these field values is visible to a unit of work of `tenant`
    (None: unscoped)."""
    if tenant is not None and values[tenant_field(cls)] != tenant:
        return False
    return include_deleted or values[DELETED_FIELD] is None


__all__ = ["DELETED_FIELD", "tenant_field", "visible"]
