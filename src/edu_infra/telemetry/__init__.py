"""OpenTelemetry for edu-core (the `otel` extra): traces and metrics, off unless enabled.

With `EDU_OTEL_ENABLED=true` the container wraps what it builds: a span per use case
(`edu.<service>.<method>`) and per unit of work (`edu.uow`), one per SQL statement (the ORM's
through SQLAlchemy's events, the PostgreSQL driver path's through asyncpg's query logger),
one per cache operation (`edu.cache.<op>`); and metrics: cache hits/misses/errors, pool
connections in use, unit-of-work duration, failed logins and lockouts. Spans carry the
organization id, never an email, password, token or bound SQL parameter. Spans and metrics
go to the global OpenTelemetry providers your service configures (or those given to
`Telemetry`). Off, nothing is wrapped: it costs nothing.
"""

from edu_infra.telemetry.cache import TracedCache
from edu_infra.telemetry.core import Telemetry, instrument_core
from edu_infra.telemetry.sql import instrument_database
from edu_infra.telemetry.uow import TracedPublisher, TracedUnitOfWorkFactory

__all__ = [
    "Telemetry",
    "TracedCache",
    "TracedPublisher",
    "TracedUnitOfWorkFactory",
    "instrument_core",
    "instrument_database",
]
