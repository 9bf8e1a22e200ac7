"""What the differential and tenant-isolation state machines share.

- `open_backend` / `make_side`: one adapter (memory, SQLite or PostgreSQL) opened on the
  machine's own event loop, and an `EduCore` over it with deterministic ports
  (`SequentialIds`, `SequentialTokens`, `FastHasher`, the `ManualClock` passed in).
- `canon`: a comparable form of any use-case result. Entities and other attrs values are
  compared field by field (the fields `attrs.asdict` walks), keeping the types: an enum is
  not its string, `True` is not `1`, a tuple is not a list. Aware datetimes compare as
  instants (the tzinfo object may differ); a naive datetime never equals an aware one. A
  dict and the SQL adapter's `MutableDict` (a dict subclass) compare as dicts.
- `queries`: random `Query` values over every field kind and operator (nulls, and/or
  nesting, several order keys, offset and keyset pages), valid most of the time, invalid
  sometimes (unknown fields, operators that do not suit the field, wrong value types).

String alphabet (`ALPHABET`): ASCII upper and lower case, digits, '-', '_', space and
'é', 'Ä', 'ß', 'ẞ', 'Ø', 'ñ', whose lower-case forms are the same in Python and in
PostgreSQL's lower() (`test_case_folding_of_the_generated_alphabet_agrees` checks every
letter). Deliberately left out, a documented limit of the SQL adapter (module docstring of
`edu_infra.sqlalchemy.compiler`), pinned by `test_case_folding_limits_are_known`:
- U+0130 (capital I with dot): Python lowers it to two code points ('i' + U+0307),
  PostgreSQL to one ('i'), so `icontains` differs;
- U+03A3 (capital sigma): Python lowers it to the final form U+03C2 at the end of a word,
  PostgreSQL always to U+03C3, so `icontains` differs.
"""

from __future__ import annotations

import asyncio
import string
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum
from typing import Any, TypeVar
from uuid import UUID

import attrs
from attrs import define, field
from hypothesis import strategies as st

from edu_domain.model import Entity
from edu_domain.query import (
    ORDERABLE,
    And,
    Condition,
    FieldInfo,
    Filter,
    Kind,
    Op,
    Or,
    Order,
    Query,
    describe,
)
from edu_domain.services import Deps, EduCore, EventDispatcher, SecurityPolicy
from edu_infra.memory import (
    FastHasher,
    InMemoryUnitOfWorkFactory,
    ManualClock,
    RecordingCommitListener,
    RecordingNotifier,
    RecordingPublisher,
    SequentialIds,
    SequentialTokens,
)

T = TypeVar("T")

POLICY = SecurityPolicy(max_failed_logins=3, lockout=timedelta(minutes=10))
EXTRA_LETTERS = "éÄßẞØñ"
ALPHABET = string.ascii_letters + string.digits + "-_ " + EXTRA_LETTERS


# --------------------------------------------------------------------------- event loop


class Loop:
    """One event loop per state-machine instance: the machine is sync, the core is async."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, awaitable: Awaitable[T]) -> T:
        return self.loop.run_until_complete(awaitable)

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()


# --------------------------------------------------------------------------- backends


UowFactoryBuilder = Callable[[ManualClock, Any, Sequence[Any]], Any]


@asynccontextmanager
async def open_backend(name: str, postgres_url: str | None = None) -> AsyncIterator[Any]:
    """Yields `build(clock, publisher, listeners) -> UnitOfWorkFactory` for one adapter.

    SQLite gets a fresh migrated file, PostgreSQL the session's test database truncated on
    entry; the engine is disposed on exit (on the loop that created it).
    """
    if name == "memory":

        def build_memory(clock: ManualClock, publisher: Any, listeners: Sequence[Any]) -> Any:
            return InMemoryUnitOfWorkFactory(clock=clock, publisher=publisher, listeners=listeners)

        yield build_memory
        return
    from edu_infra.sqlalchemy import SqlUnitOfWorkFactory
    from tests import sql_harness

    harness_cm: AbstractAsyncContextManager[Any]
    if name == "sqlite":
        harness_cm = sql_harness.sqlite_harness()
    elif name == "postgres":
        assert postgres_url is not None
        harness_cm = sql_harness.postgres_harness(postgres_url)
    else:  # pragma: no cover - a typo in a parametrisation
        raise ValueError(name)
    async with harness_cm as harness:
        database = harness.factory.database

        def build_sql(clock: ManualClock, publisher: Any, listeners: Sequence[Any]) -> Any:
            return SqlUnitOfWorkFactory(
                database, clock=clock, publisher=publisher, listeners=listeners
            )

        yield build_sql


@define
class Side:
    """One EduCore over one adapter, with the recorders its ports report to."""

    name: str
    core: EduCore
    factory: Any
    notifier: RecordingNotifier
    events: RecordingPublisher
    listener: RecordingCommitListener
    seen_mail: int = 0
    seen_events: int = 0
    seen_commits: int = 0

    def new_mail(self) -> list[Any]:
        mail = self.notifier.sent[self.seen_mail :]
        self.seen_mail = len(self.notifier.sent)
        return mail

    def new_events(self) -> list[Any]:
        events = self.events.events[self.seen_events :]
        self.seen_events = len(self.events.events)
        return events

    def new_commits(self) -> list[Any]:
        commits = self.listener.commits[self.seen_commits :]
        self.seen_commits = len(self.listener.commits)
        return commits


def make_side(name: str, build: Any, clock: ManualClock) -> Side:
    notifier, events, listener = (
        RecordingNotifier(),
        RecordingPublisher(),
        RecordingCommitListener(),
    )
    factory = build(clock, EventDispatcher(notifier, [events]), [listener])
    deps = Deps(
        uow=factory,
        clock=clock,
        ids=SequentialIds(),
        tokens=SequentialTokens(),
        hasher=FastHasher(),
        policy=POLICY,
    )
    return Side(name, EduCore(deps), factory, notifier, events, listener)


# --------------------------------------------------------------------------- outcomes


@define
class Outcome:
    """What a call gave: a value, or the exception it raised."""

    value: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


async def attempt(call: Callable[[], Awaitable[Any]]) -> Outcome:
    try:
        return Outcome(await call())
    except Exception as error:
        return Outcome(error=error)


def canon(value: Any) -> Any:
    """A comparable, type-keeping form of a result (see the module docstring)."""
    if isinstance(value, Enum):
        return (type(value).__name__, value.value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return (type(value).__name__, value)
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            return ("naive datetime", value.isoformat())
        return ("datetime", value.astimezone(UTC).isoformat())
    if isinstance(value, timedelta):
        return ("timedelta", value.total_seconds())
    if isinstance(value, UUID):
        return ("UUID", value.hex)
    if attrs.has(type(value)):
        return (
            type(value).__name__,
            {a.name: canon(getattr(value, a.name)) for a in attrs.fields(type(value))},
        )
    if isinstance(value, tuple):
        return ("tuple", [canon(item) for item in value])
    if isinstance(value, list):
        return ("list", [canon(item) for item in value])
    if isinstance(value, Mapping):  # dict, or the SQL adapter's MutableDict (a dict subclass)
        return ("dict", {str(k): canon(v) for k, v in sorted(value.items(), key=lambda i: i[0])})
    if isinstance(value, type):
        return ("class", value.__name__)
    raise TypeError(f"no canonical form for {type(value).__name__}: {value!r}")


def error_signature(error: BaseException) -> tuple[Any, ...]:
    """What must agree between two errors: the type and the attributes a caller branches on."""
    parts: list[Any] = [type(error).__name__]
    for attribute in ("field", "entity", "purpose", "until"):
        if hasattr(error, attribute):
            parts.append((attribute, canon(getattr(error, attribute))))
    return tuple(parts)


def describe_outcome(outcome: Outcome) -> str:
    if outcome.error is not None:
        return f"raised {type(outcome.error).__name__}: {outcome.error}"
    return f"returned {outcome.value!r}"


def _typed(value: Any) -> bool:
    return isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """Where two canonical forms first differ, as a readable path (`.items[1].email`)."""
    if a == b:
        return None
    here = path or "<root>"
    if not (_typed(a) and _typed(b)) or a[0] != b[0]:
        return f"{here}: {a!r} != {b!r}"
    left, right = a[1], b[1]
    if isinstance(left, dict) and isinstance(right, dict):
        for key in sorted(set(left) | set(right), key=lambda k: (k != "id", str(k))):
            if key not in left or key not in right:
                return f"{path}.{key}: on one side only"
            found = first_difference(left[key], right[key], f"{path}.{key}")
            if found:
                return found
    elif isinstance(left, list) and isinstance(right, list):
        if len(left) != len(right):
            return f"{here}: {len(left)} items != {len(right)} items"
        for i, (x, y) in enumerate(zip(left, right, strict=True)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
    return f"{here}: {a!r} != {b!r}"


# --------------------------------------------------------------------------- values


texts = st.text(alphabet=ALPHABET, min_size=0, max_size=12)
#: Never blank: names and titles must show something (the domain's display-text rule).
nonempty_texts = st.text(alphabet=ALPHABET, min_size=1, max_size=12).filter(str.strip)
multiline_texts = st.text(alphabet=ALPHABET + "\n\t", min_size=0, max_size=20)
offsets = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
)
BASE_TIME = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


@st.composite
def aware_datetimes(draw: st.DrawFn) -> datetime:
    """Instants around the machines' clock (which starts at BASE_TIME), in several offsets."""
    delta = draw(
        st.one_of(
            st.integers(min_value=-(10**6), max_value=10**6).map(
                lambda us: timedelta(microseconds=us)
            ),
            st.integers(min_value=-400, max_value=400).map(lambda d: timedelta(days=d)),
        )
    )
    return (BASE_TIME + delta).astimezone(draw(offsets))


def rarely(draw: st.DrawFn, one_in: int = 40) -> bool:
    """True about once in `one_in` draws: how often generated input is made invalid.

    Compares with a middle value: hypothesis favours the bounds of an integer range.
    """
    return draw(st.integers(0, one_in - 1)) == one_in // 2


def _mutate_text(draw: st.DrawFn, text: str) -> str:
    how = draw(st.sampled_from(["same", "swapcase", "prefix", "suffix", "append", "upper"]))
    if how == "swapcase":
        return text.swapcase()
    if how == "upper":
        return text.upper()
    if how == "prefix" and text:
        return text[: draw(st.integers(0, len(text)))]
    if how == "suffix" and text:
        return text[draw(st.integers(0, len(text))) :]
    if how == "append":
        return text + draw(st.sampled_from(list(ALPHABET)))
    return text


def _observed(draw: st.DrawFn, observed: Mapping[str, Sequence[Any]], name: str) -> Any:
    values = [v for v in observed.get(name, ()) if v is not None]
    if not values:
        return None
    return draw(st.sampled_from(values))


def scalar(draw: st.DrawFn, info: FieldInfo, observed: Mapping[str, Sequence[Any]]) -> Any:
    """A value for comparing against `info`'s field: usually of its kind, sometimes not."""
    seen = _observed(draw, observed, info.name)
    kind = info.kind
    if rarely(draw):  # a value of the wrong type (or a null for a comparison)
        return draw(st.sampled_from([None, "x", 1, True, 1.5, BASE_TIME.replace(tzinfo=None)]))
    if kind is Kind.STR:
        if seen is not None and draw(st.booleans()):
            return _mutate_text(draw, seen)
        return draw(texts)
    if kind is Kind.INT:
        base = seen if isinstance(seen, int) else 0
        return draw(
            st.one_of(
                st.integers(-2, 4).map(lambda d: base + d),
                st.sampled_from([-(2**31), 2**31 - 1, 2**31, -(2**63), 2**63]),
            )
        )
    if kind is Kind.BOOL:
        return draw(st.booleans())
    if kind is Kind.DATETIME:
        if seen is not None and draw(st.booleans()):
            delta = draw(st.sampled_from([0, 0, 1, -1, 1_000_000]))
            return (seen + timedelta(microseconds=delta)).astimezone(draw(offsets))
        return draw(aware_datetimes())
    if kind is Kind.UUID:
        if seen is not None and draw(st.integers(0, 3)):
            return seen if draw(st.booleans()) else str(seen)
        return draw(st.uuids())
    if kind is Kind.ENUM:
        assert info.enum is not None
        member = draw(st.sampled_from(list(info.enum)))
        return "no-such-value" if rarely(draw) else draw(st.sampled_from([member, member.value]))
    return draw(st.sampled_from(["x", 1, ("a",)]))


def tag_values(draw: st.DrawFn, observed: Mapping[str, Sequence[Any]], name: str) -> list[str]:
    known = sorted(
        {tag for tags in observed.get(name, ()) if isinstance(tags, tuple) for tag in tags}
    )
    pool = st.one_of(st.sampled_from(known), nonempty_texts) if known else nonempty_texts
    return draw(st.lists(pool, min_size=0 if rarely(draw) else 1, max_size=3))


_VALID_OPS = {
    Kind.STR: [
        Op.EQ,
        Op.NE,
        Op.LT,
        Op.LE,
        Op.GT,
        Op.GE,
        Op.IN,
        Op.IS_NULL,
        Op.STARTSWITH,
        Op.ICONTAINS,
        Op.STARTSWITH,  # case sensitivity is where SQL dialects differ most: drawn twice
        Op.ICONTAINS,
    ],
    Kind.INT: [Op.EQ, Op.NE, Op.LT, Op.LE, Op.GT, Op.GE, Op.IN, Op.IS_NULL],
    Kind.DATETIME: [Op.EQ, Op.NE, Op.LT, Op.LE, Op.GT, Op.GE, Op.IN, Op.IS_NULL],
    Kind.UUID: [Op.EQ, Op.NE, Op.LT, Op.LE, Op.GT, Op.GE, Op.IN, Op.IS_NULL],
    Kind.BOOL: [Op.EQ, Op.NE, Op.IS_NULL],
    Kind.ENUM: [Op.EQ, Op.NE, Op.IN, Op.IS_NULL],
    Kind.TAGS: [Op.CONTAINS_ALL],
    Kind.JSON: [Op.EQ],
}


def condition(draw: st.DrawFn, cls: type[Entity], observed: Mapping[str, Sequence[Any]]) -> Filter:
    fields = describe(cls)
    if rarely(draw, 60):
        return Condition(draw(st.sampled_from(["nope", "Email", "id "])), Op.EQ, "x")
    info = fields[draw(st.sampled_from(sorted(fields)))]
    ops = _VALID_OPS[info.kind]
    op = draw(st.sampled_from(list(Op))) if rarely(draw) else draw(st.sampled_from(ops))
    if op is Op.IS_NULL:
        return Condition(info.name, op, "yes" if rarely(draw, 60) else draw(st.booleans()))
    if op is Op.IN:
        values = [scalar(draw, info, observed) for _ in range(draw(st.integers(0, 4)))]
        return Condition(info.name, op, "not-a-list" if rarely(draw, 60) else values)
    if op is Op.CONTAINS_ALL:
        return Condition(info.name, op, tag_values(draw, observed, info.name))
    if op in (Op.STARTSWITH, Op.ICONTAINS):
        seen = _observed(draw, observed, info.name)
        if isinstance(seen, str) and draw(st.integers(0, 3)):
            text = seen[: draw(st.integers(0, len(seen)))]
            if op is Op.ICONTAINS and len(seen) > 2:
                start = draw(st.integers(0, len(seen) - 1))
                text = seen[start : start + draw(st.integers(1, 4))]
            case = draw(st.sampled_from(["same", "swapcase", "upper", "lower", "same"]))
            text = text if case == "same" else getattr(text, case)()
            return Condition(info.name, op, text)
        return Condition(info.name, op, draw(texts))
    return Condition(info.name, op, scalar(draw, info, observed))


def filters(
    draw: st.DrawFn, cls: type[Entity], observed: Mapping[str, Sequence[Any]], depth: int = 0
) -> Filter:
    shape = draw(st.integers(0, 5)) if depth < 2 else 0
    if shape <= 3:
        return condition(draw, cls, observed)
    parts = tuple(filters(draw, cls, observed, depth + 1) for _ in range(draw(st.integers(1, 3))))
    return And(parts) if shape == 4 else Or(parts)


def orderings(draw: st.DrawFn, cls: type[Entity]) -> tuple[Order, ...]:
    fields = describe(cls)
    orderable = sorted(name for name, info in fields.items() if info.kind in ORDERABLE)
    keys = [
        Order(draw(st.sampled_from(orderable)), draw(st.booleans()))
        for _ in range(draw(st.integers(0, 3)))
    ]
    if rarely(draw, 60):
        keys.append(Order(draw(st.sampled_from(["tags", "metadata", "nope"])), False))
    return tuple(keys)


@st.composite
def queries(
    draw: st.DrawFn,
    cls: type[Entity],
    observed: Mapping[str, Sequence[Any]],
    *,
    paged: bool = True,
) -> Query:
    """A random query for `cls`; `observed` maps field names to values seen in the data."""
    broad = draw(st.sampled_from(["none", "filter", "none", "filter", "filter"]))
    flt = filters(draw, cls, observed) if broad == "filter" else None
    query = Query(filter=flt, ordering=orderings(draw, cls))
    if not paged:
        return query
    page = "bad" if rarely(draw, 25) else draw(st.sampled_from(["all", "offset", "keyset"]))
    if page == "offset":
        return query.page(draw(st.integers(0, 6)), draw(st.integers(1, 5)))
    if page == "keyset":
        return query.after(None, draw(st.integers(1, 4)))
    if page == "bad":
        return attrs.evolve(
            query,
            skip=draw(st.sampled_from([-1, 0, 0])),
            limit=draw(st.sampled_from([0, 1001, None, 2])),
            cursor=draw(st.sampled_from([None, "garbage", "eyJ4Ijox"])),
        )
    return query


def observed_values(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    values: dict[str, list[Any]] = {}
    for row in rows:
        for name, value in row.items():
            values.setdefault(name, []).append(value)
    return values


def entity_row(entity: Entity) -> dict[str, Any]:
    return {a.name: getattr(entity, a.name) for a in attrs.fields(type(entity))}


@define
class StepCounter:
    """Counts executed rule steps per backend (reported by tests/differential/conftest.py)."""

    counts: dict[str, int] = field(factory=dict)

    def add(self, backend: str) -> None:
        self.counts[backend] = self.counts.get(backend, 0) + 1
