"""Invalidation after commit: what a committed change of each entity class drops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeAlias
from uuid import UUID

from edu_domain.caching import CacheKey
from edu_domain.model import EducationalContent, LoginSession, Organization, User
from edu_domain.model.base import Entity
from edu_domain.ports import Change, ChangeKind
from edu_infra.caching.keys import Invalidation, Namespace
from edu_infra.caching.read_through import ReadThroughCache

log = logging.getLogger("edu_infra.caching")

__all__ = ["DEFAULT_RULES", "CacheInvalidator", "Rule"]


Rule: TypeAlias = Callable[[Change, UUID], Iterable[Invalidation]]


def _user_rule(change: Change, tenant: UUID) -> Iterable[Invalidation]:
    # A new user cannot be cached yet (None is never cached): only the stats change.
    if change.kind is not ChangeKind.INSERT:
        yield CacheKey("user", tenant, (str(change.id),))
    yield Namespace(tenant, "stats")


def _stats_rule(change: Change, tenant: UUID) -> Iterable[Invalidation]:
    yield Namespace(tenant, "stats")


def _content_rule(change: Change, tenant: UUID) -> Iterable[Invalidation]:
    yield Namespace(tenant, "content_slug")


def _org_rule(change: Change, tenant: UUID) -> Iterable[Invalidation]:
    yield Namespace(tenant, "org")


#: What a committed change of each entity class invalidates (subclasses included).
DEFAULT_RULES: Mapping[type[Entity], Rule] = {
    User: _user_rule,
    LoginSession: _stats_rule,
    EducationalContent: _content_rule,
    Organization: _org_rule,
}


class CacheInvalidator:
    """A `CommitListener`: after a commit, invalidates what the changed entities affect.

    The unit of work calls it only after a successful commit, so a rollback invalidates
    nothing. It never raises: the commit has already happened, and an error here must not
    make the caller believe otherwise.
    """

    def __init__(
        self,
        reads: ReadThroughCache,
        rules: Mapping[type[Entity], Rule] = DEFAULT_RULES,
        *,
        concurrency: int = 32,
    ) -> None:
        self.reads = reads
        self.rules = dict(rules)
        self._concurrency = concurrency

    def targets(self, changes: Sequence[Change]) -> list[Invalidation]:
        """The distinct invalidations `changes` call for, in first-seen order."""
        found: dict[Invalidation, None] = {}
        for change in changes:
            tenant = change.organization_id
            if tenant is None and issubclass(change.entity, Organization):
                tenant = change.id
            if tenant is None:
                continue
            for cls, rule in self.rules.items():
                if issubclass(change.entity, cls):
                    found.update(dict.fromkeys(rule(change, tenant)))
        return list(found)

    async def committed(self, changes: Sequence[Change]) -> None:
        targets = self.targets(changes)
        for start in range(0, len(targets), self._concurrency):
            batch = targets[start : start + self._concurrency]
            results = await asyncio.gather(
                *(self.reads.apply(t) for t in batch), return_exceptions=True
            )
            for target, result in zip(batch, results, strict=True):
                if isinstance(result, BaseException):
                    log.error("cache invalidation of %s raised", target, exc_info=result)
