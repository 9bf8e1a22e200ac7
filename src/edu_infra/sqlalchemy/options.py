"""Names the unit of work and its ORM events agree on: execution options and session info
keys. A module of its own so that the compiler, the session events and the unit of work
share them without importing each other."""

from __future__ import annotations

#: `session.info` key of the unit of work that owns the session
UOW_KEY = "edu_uow"
#: execution option: read soft-deleted rows too
INCLUDE_DELETED = "edu_include_deleted"
#: execution option: the entity an aggregate select reads (it has no mapped columns)
ENTITY = "edu_entity"

__all__ = ["ENTITY", "INCLUDE_DELETED", "UOW_KEY"]
