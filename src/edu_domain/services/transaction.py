"""Several use cases in one unit of work and one commit: `core.transaction(scope)`.

    async with core.transaction(scope) as tx:
        draft = await tx.content.create_draft(scope, NewContent(title="Fractions"))
        await tx.content.publish(scope, draft.id)

The use cases are the ordinary ones, over a unit-of-work factory that hands every one of
them the transaction's unit of work (`_JoinedUnitOfWork`): a use case's own `commit`
becomes a flush (its errors surface where they do today), and leaving its block does not
end the transaction. The one commit happens when the block ends without an error; events,
cache invalidation and after-commit callbacks follow it, as they follow any commit.

Any failure inside a use case's unit of work (adapters roll the whole transaction back
on a failed write, as PostgreSQL aborts it) dooms the transaction: every later use of it
raises that same error, and the block commits nothing even if the caller caught the error.
Reads inside bypass the read cache: a cached value cannot show the transaction's own
writes, and an uncommitted value must never be cached.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar
from uuid import UUID

from attrs import evolve

from edu_domain.caching import NoReadCache
from edu_domain.errors import InvalidState, TenantViolation
from edu_domain.model.base import Entity
from edu_domain.ports import AfterCommit, UnitOfWork
from edu_domain.query import Filter, Group, Page, Query, Tally
from edu_domain.services.commands import require_command
from edu_domain.services.context import Scope
from edu_domain.services.deps import Deps

if TYPE_CHECKING:
    from edu_domain.services import EduCore

E = TypeVar("E", bound=Entity)
T = TypeVar("T")


class Transaction:
    """Use cases sharing one unit of work; enter it with `async with`.

    `users`, `verification`, `auth`, `content` and `organizations` are the core's services
    bound to this transaction (organization work that needs an unscoped unit of work, such
    as `organizations.create`, cannot join a tenant's transaction). `uow` is the unit of
    work itself, for reads and writes of your own in the same transaction.
    """

    def __init__(self, deps: Deps, scope: Scope, make_core: Callable[[Deps], EduCore]) -> None:
        self.scope = require_command(scope, Scope, "scope")
        self._real = deps.uow(tenant=scope.organization_id, actor=scope.actor_id)
        self._failure: BaseException | None = None
        self._entered = False
        joined = evolve(deps, uow=_JoinedFactory(self), reads=NoReadCache())
        core = make_core(joined)
        self.users = core.users
        self.verification = core.verification
        self.auth = core.auth
        self.content = core.content
        self.organizations = core.organizations
        self.uow: UnitOfWork = _JoinedUnitOfWork(self)

    async def __aenter__(self) -> Self:
        if self._entered:
            raise InvalidState("a transaction runs once: open a new one")
        self._entered = True
        await self._real.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc is None:
                if self._failure is not None:
                    raise InvalidState(
                        "a use case of this transaction failed: nothing was committed"
                    ) from self._failure
                await self._real.commit()
        finally:
            await self._real.__aexit__(exc_type, exc, tb)

    def after_commit(self, callback: AfterCommit) -> None:
        """Run `callback` once the transaction commits; never if it does not."""
        self.check()
        self._real.after_commit(callback)

    # ------------------------------------------------------------------ for the joined uow

    @property
    def real(self) -> UnitOfWork:
        self.check()
        return self._real

    def check(self) -> None:
        """Refuse use before `async with`, and after a failure (re-raising that failure)."""
        if not self._entered:
            raise InvalidState("use the transaction inside `async with core.transaction(...)`")
        if self._failure is not None:
            raise self._failure

    def fail(self, error: BaseException) -> None:
        """Doom the transaction: the unit of work may already have rolled it back."""
        if self._failure is None:
            self._failure = error


class _JoinedFactory:
    """The `UnitOfWorkFactory` the transaction's use cases see: always its unit of work."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def __call__(
        self,
        *,
        tenant: UUID,
        actor: UUID | None = None,
        read_only: bool = False,
        after: Any = None,
    ) -> UnitOfWork:
        """Reads of the transaction's use cases run in it too (they see its own writes, and
        it runs where writes go, so no token can ask for anything newer)."""
        if tenant != self._tx.scope.organization_id:
            raise TenantViolation("a transaction works for one organization only")
        return _JoinedUnitOfWork(self._tx)

    def unscoped(
        self, *, actor: UUID | None = None, read_only: bool = False, after: Any = None
    ) -> UnitOfWork:
        raise InvalidState("system work (an unscoped unit of work) cannot join a transaction")


class _JoinedUnitOfWork(UnitOfWork):
    """The transaction's unit of work as one use case sees it: `commit` flushes, leaving
    the block keeps the transaction open, and any failure dooms the transaction.

    A use case that leaves without committing has only read (every use case commits what
    it changes), so leaving needs nothing undone.
    """

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx
        self.tenant = tx.scope.organization_id
        self.actor = tx.scope.actor_id

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            self._tx.fail(exc)

    async def _run(self, call: Callable[[UnitOfWork], Any]) -> Any:
        real = self._tx.real
        try:
            return await call(real)
        except BaseException as error:
            self._tx.fail(error)
            raise

    async def begin(self) -> None:
        self._tx.check()

    async def close(self) -> None:
        """The transaction closes its unit of work when the block ends."""

    async def commit(self) -> None:
        await self._run(lambda uow: uow.flush())

    async def rollback(self) -> None:
        self._tx.fail(InvalidState("a use case of this transaction rolled back"))

    async def flush(self) -> None:
        await self._run(lambda uow: uow.flush())

    def after_commit(self, callback: AfterCommit) -> None:
        self._tx.after_commit(callback)

    async def get(
        self, cls: type[E], id: UUID, *, include_deleted: bool = False, lock: bool = False
    ) -> E | None:
        found: E | None = await self._run(
            lambda uow: uow.get(cls, id, include_deleted=include_deleted, lock=lock)
        )
        return found

    async def find(
        self, cls: type[E], query: Query | None = None, *, include_deleted: bool = False
    ) -> Page[E]:
        page: Page[E] = await self._run(
            lambda uow: uow.find(cls, query, include_deleted=include_deleted)
        )
        return page

    def stream(
        self, cls: type[E], query: Query | None = None, *, batch_size: int = 1_000
    ) -> AsyncIterator[E]:
        return self._stream(self._tx.real.stream(cls, query, batch_size=batch_size))

    async def _stream(self, rows: AsyncIterator[E]) -> AsyncIterator[E]:
        try:
            async for row in rows:
                yield row
        except BaseException as error:
            self._tx.fail(error)
            raise

    async def count(
        self, cls: type[E], query: Query | None = None, *, include_deleted: bool = False
    ) -> int:
        counted: int = await self._run(
            lambda uow: uow.count(cls, query, include_deleted=include_deleted)
        )
        return counted

    async def count_by(
        self,
        cls: type[E],
        by: Sequence[str],
        query: Query | None = None,
        *,
        measures: Mapping[str, Filter] | None = None,
    ) -> list[Group]:
        groups: list[Group] = await self._run(
            lambda uow: uow.count_by(cls, by, query, measures=measures)
        )
        return groups

    async def tally(
        self,
        cls: type[E],
        by: Sequence[str],
        query: Query | None = None,
        *,
        measures: Mapping[str, Filter] | None = None,
        totals: Mapping[str, tuple[type[Entity], Query | None]] | None = None,
    ) -> Tally:
        tally: Tally = await self._run(
            lambda uow: uow.tally(cls, by, query, measures=measures, totals=totals)
        )
        return tally

    async def add(self, entity: Entity) -> None:
        await self._run(lambda uow: uow.add(entity))

    async def add_all(self, entities: Iterable[Entity]) -> None:
        await self._run(lambda uow: uow.add_all(entities))

    async def import_rows(self, cls: type[Entity], rows: Iterable[Mapping[str, Any]]) -> int:
        count: int = await self._run(lambda uow: uow.import_rows(cls, rows))
        return count

    async def delete(self, entity: Entity, *, hard: bool = False) -> None:
        await self._run(lambda uow: uow.delete(entity, hard=hard))

    async def restore(self, entity: Entity) -> None:
        await self._run(lambda uow: uow.restore(entity))


__all__ = ["Transaction"]
