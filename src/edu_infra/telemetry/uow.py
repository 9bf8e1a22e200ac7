"""A span and a duration per unit of work; lockouts counted from the committed events."""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any, cast
from uuid import UUID

from opentelemetry import context, trace

from edu_domain.model.base import DomainEvent
from edu_domain.model.events import UserLockedOut
from edu_domain.ports import (
    Envelope,
    EnvelopePublisher,
    EventPublisher,
    UnitOfWork,
    UnitOfWorkFactory,
)
from edu_infra.telemetry.core import ORGANIZATION, Telemetry, mark_error


class TracedUnitOfWorkFactory:
    """`UnitOfWorkFactory` whose units of work are spans (`edu.uow`) and are timed."""

    def __init__(self, inner: UnitOfWorkFactory, telemetry: Telemetry) -> None:
        self.inner = inner
        self.telemetry = telemetry

    def __call__(
        self,
        *,
        tenant: UUID,
        actor: UUID | None = None,
        read_only: bool = False,
        after: Any = None,
    ) -> UnitOfWork:
        inner = self.inner(tenant=tenant, actor=actor, read_only=read_only, after=after)
        return cast(UnitOfWork, _TracedUnitOfWork(inner, self))

    def unscoped(
        self, *, actor: UUID | None = None, read_only: bool = False, after: Any = None
    ) -> UnitOfWork:
        inner = self.inner.unscoped(actor=actor, read_only=read_only, after=after)
        return cast(UnitOfWork, _TracedUnitOfWork(inner, self))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _TracedUnitOfWork:
    """Delegates everything to the real unit of work; the span is current while it is open,
    so SQL spans nest under it."""

    def __init__(self, inner: UnitOfWork, factory: TracedUnitOfWorkFactory) -> None:
        self._inner = inner
        self._telemetry = factory.telemetry
        self._outcome = "rollback"
        self._span: Any = None
        self._token: Any = None
        self._started = 0.0

    async def __aenter__(self) -> _TracedUnitOfWork:
        tenant = self._inner.tenant
        attributes = {ORGANIZATION: str(tenant)} if tenant is not None else {}
        self._span = self._telemetry.tracer.start_span(
            "edu.uow",
            attributes={
                **attributes,
                "edu.uow.scoped": tenant is not None,
                "edu.uow.read_only": bool(getattr(self._inner, "read_only", False)),
            },
        )
        self._token = context.attach(trace.set_span_in_context(self._span))
        self._started = time.perf_counter()
        try:
            await self._inner.__aenter__()
        except BaseException as error:
            self._finish(error)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._inner.__aexit__(exc_type, exc, tb)
        except BaseException as error:
            self._finish(error)
            raise
        self._finish(exc)

    async def commit(self) -> None:
        await self._inner.commit()
        self._outcome = "commit"

    def _finish(self, error: BaseException | None) -> None:
        outcome = "error" if error is not None else self._outcome
        self._telemetry.uow_duration.record(
            time.perf_counter() - self._started, {"edu.uow.outcome": outcome}
        )
        self._span.set_attribute("edu.uow.outcome", outcome)
        route = getattr(getattr(self._inner, "rows", None), "route", None)
        if route is not None and route.target is not None:  # read replicas: where it read
            self._span.set_attributes(
                {
                    "edu.db.target": route.target,
                    "edu.db.route": str(route.reason),
                    "edu.db.replica_wait_ms": round(route.waited * 1000, 3),
                }
            )
        if error is not None:
            mark_error(self._span, error)
        self._span.end()
        context.detach(self._token)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


UnitOfWork.register(_TracedUnitOfWork)


class TracedPublisher:
    """Counts lockouts (`UserLockedOut`) and passes every event on."""

    def __init__(self, inner: EventPublisher, telemetry: Telemetry) -> None:
        self.inner = inner
        self.telemetry = telemetry

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        self._count(events)
        await self.inner.publish(events)

    async def deliver(self, envelope: Envelope) -> None:
        """One event from the outbox relay (counted on the first attempt only)."""
        if envelope.attempt == 1:
            self._count([envelope.event])
        if isinstance(self.inner, EnvelopePublisher):
            await self.inner.deliver(envelope)
        else:
            await self.inner.publish([envelope.event])

    def _count(self, events: Sequence[DomainEvent]) -> None:
        locked = sum(1 for event in events if isinstance(event, UserLockedOut))
        if locked:
            self.telemetry.lockouts.add(locked)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
