"""The ports every use case may need, bundled once so services stay small."""

from __future__ import annotations

from attrs import Factory, field, frozen

from edu_domain.caching import NoReadCache, ReadCache
from edu_domain.ports import Clock, IdGenerator, PasswordHasher, TokenGenerator, UnitOfWorkFactory
from edu_domain.services.context import SecurityPolicy


@frozen(kw_only=True)
class Deps:
    uow: UnitOfWorkFactory
    clock: Clock
    ids: IdGenerator
    tokens: TokenGenerator
    hasher: PasswordHasher
    policy: SecurityPolicy = field(default=Factory(SecurityPolicy))
    reads: ReadCache = field(default=Factory(NoReadCache))
