"""The tracer and meters, and the span around every use case."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.trace import Span, Status, StatusCode

from edu_domain.caching import Cache
from edu_domain.errors import AccountLocked, AuthenticationFailed
from edu_domain.services import EduCore, Scope

SCOPE_NAME = "edu_core"
ORGANIZATION = "edu.organization_id"


class Telemetry:
    """edu-core's tracer and instruments, from the given providers or the global ones."""

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self.tracer = trace.get_tracer(SCOPE_NAME, tracer_provider=tracer_provider)
        self.meter = metrics.get_meter(SCOPE_NAME, meter_provider=meter_provider)
        self.uow_duration = self.meter.create_histogram(
            "edu.uow.duration", unit="s", description="how long units of work stay open"
        )
        self.failed_logins = self.meter.create_counter(
            "edu.auth.failed_logins", description="sign-ins refused (wrong credentials, locked)"
        )
        self.lockouts = self.meter.create_counter(
            "edu.auth.lockouts", description="accounts locked after repeated failures"
        )

    def observe_cache(self, cache: Cache) -> None:
        """Cache hits, misses and errors, read from the adapter's own counters."""
        for name, field in (("hits", "hits"), ("misses", "misses"), ("errors", "errors")):
            self.meter.create_observable_counter(
                f"edu.cache.{name}",
                callbacks=[_reader(cache, field)],
                description=f"cache {name} since start",
            )

    def observe_replicas(self, replicas: Any) -> None:
        """Where read-only units of work read (`edu.db.reads` by target and route reason) and
        each replica's lag as last seen (`edu.db.replica.lag`, with its health)."""

        def reads(_options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
            for (target, reason), count in list(replicas.reads.items()):
                yield metrics.Observation(count, {"edu.db.target": target, "edu.db.route": reason})

        def lag(_options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
            for replica in replicas.replicas:
                attributes = {"edu.db.replica": replica.name, "edu.db.health": replica.health.value}
                yield metrics.Observation(replica.lag, attributes)

        self.meter.create_observable_counter(
            "edu.db.reads", callbacks=[reads], description="read-only units of work by server"
        )
        self.meter.create_observable_gauge(
            "edu.db.replica.lag", callbacks=[lag], unit="s", description="replica lag, as last seen"
        )

    def observe_pool(self, checked_out: Callable[[], int]) -> None:
        def read(_options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
            yield metrics.Observation(checked_out())

        self.meter.create_observable_gauge(
            "edu.db.pool.in_use", callbacks=[read], description="database connections in use"
        )


def _reader(cache: Cache, field: str) -> Callable[[metrics.CallbackOptions], Iterable[Any]]:
    def read(_options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
        yield metrics.Observation(getattr(cache.stats(), field))

    return read


def mark_error(span: Span, error: BaseException) -> None:
    """Error status and type only: messages may quote input, so they stay out of spans."""
    span.set_status(Status(StatusCode.ERROR, type(error).__name__))
    span.set_attribute("error.type", type(error).__name__)


def instrument_core(core: EduCore, telemetry: Telemetry) -> EduCore:
    """Wrap every public use case of `core` (on the instance) in a span."""
    for service_name in ("organizations", "users", "verification", "auth", "content"):
        service = getattr(core, service_name)
        for name, method in inspect.getmembers(service, inspect.iscoroutinefunction):
            if not name.startswith("_"):
                setattr(service, name, _traced(telemetry, f"{service_name}.{name}", method))
    return core


def _traced(
    telemetry: Telemetry, use_case: str, method: Callable[..., Awaitable[Any]]
) -> Callable[..., Awaitable[Any]]:
    span_name = f"edu.{use_case}"
    counts_logins = use_case in ("auth.authenticate", "auth.reject")

    @functools.wraps(method)
    async def traced(*args: Any, **kwargs: Any) -> Any:
        with telemetry.tracer.start_as_current_span(
            span_name, record_exception=False, set_status_on_exception=False
        ) as span:
            span.set_attribute("edu.use_case", use_case)
            scope = next((a for a in args if isinstance(a, Scope)), kwargs.get("scope"))
            if isinstance(scope, Scope):
                span.set_attribute(ORGANIZATION, str(scope.organization_id))
            try:
                return await method(*args, **kwargs)
            except Exception as error:
                mark_error(span, error)
                if counts_logins and isinstance(error, AuthenticationFailed | AccountLocked):
                    reason = "locked" if isinstance(error, AccountLocked) else "credentials"
                    telemetry.failed_logins.add(1, {"edu.reason": reason})
                raise

    return traced
