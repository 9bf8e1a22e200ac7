"""The read path of PostgreSQL units of work: precompiled SQL run on the driver itself.

A get through the ORM spends most of its time outside the database: building and
compiling the statement, loader criteria, the Result machinery and the greenlet bridge
(about 1 ms of Python against 0.1 ms of round trip). Reads here are compiled once per
shape (`params.template`), sent through asyncpg's own prepared-statement cache, and their
rows turned into entities directly.

Every guarantee of the ORM path is written into the SQL: the tenant filter (a parameter,
never part of the cached text), the soft-delete filter, and the row-level security the
transaction's settings select. Entities come out as the ORM would load them: instrumented,
with their identity key, so the unit of work can attach them to its session for writes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from attrs import frozen
from sqlalchemy import ColumnElement, Select, bindparam, select
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import class_mapper
from sqlalchemy.orm.base import instance_state

from edu_domain.model import Entity
from edu_domain.query import BoundQuery, Filter
from edu_infra.sqlalchemy.bulk import RowInsert, RowUpdate
from edu_infra.sqlalchemy.compiler import QueryCompiler
from edu_infra.sqlalchemy.guard import BOUND, TENANT_PARAM, predicates
from edu_infra.sqlalchemy.mapping import table_of
from edu_infra.sqlalchemy.params import Param, filter_template, template
from edu_infra.sqlalchemy.sa_internals import identity_class, mark_committed, state_constructor
from edu_infra.sqlalchemy.types import EnumText, UtcDateTime

TENANT = TENANT_PARAM
ID = "edu_id"
Processor = Callable[[Any], Any] | None


@frozen
class Prepared:
    """One compiled statement: its SQL and how to turn named values into its arguments."""

    sql: str
    names: tuple[str, ...]
    processors: tuple[Processor, ...]
    constants: Mapping[str, Any]
    results: tuple[Processor, ...] = ()

    def row(self, record: Sequence[Any]) -> tuple[Any, ...]:
        """A result row with each column's result processing (e.g. text -> enum member)."""
        return tuple(
            process(value) if process is not None else value
            for process, value in zip(self.results, record, strict=True)
        )

    def args(self, values: Mapping[str, Any]) -> list[Any]:
        out = []
        constants = self.constants
        for name, process in zip(self.names, self.processors, strict=True):
            value = constants[name] if name in constants else values[name]
            out.append(process(value) if process is not None and value is not None else value)
        return out


class EntityLoader:
    """Rows of one table -> instrumented entities, as the ORM loads them (no `__init__`)."""

    def __init__(self, cls: type[Entity], dialect: Dialect) -> None:
        table = table_of(cls)
        self.cls = cls
        self._mapper = class_mapper(cls)
        self._manager = self._mapper.class_manager
        self.names = tuple(str(c.key) for c in table.columns)
        self.id_index = self.names.index("id")
        self._converted = tuple(
            (i, name, process)
            for i, (name, column) in enumerate(zip(self.names, table.columns, strict=True))
            if (process := result_processor(column.type, dialect)) is not None
        )
        self._on_load = self._manager.dispatch.load
        self._new = cls.__new__
        self._state = state_constructor(self._mapper)
        self._identity_class = identity_class(self._mapper)

    def identity(self, id: Any) -> Any:
        """The session's identity key of the row `id` (the mapper's own form, built directly)."""
        return (self._identity_class, (id,), None)

    def build(self, record: Sequence[Any], identity: Any = None) -> Entity:
        # `ClassManager.new_instance` without its setattr (attrs' on_setattr hooks)
        obj: Entity = self._new(self.cls)
        values = obj.__dict__
        values["_sa_instance_state"] = self._state(obj, self._manager)
        values.update(zip(self.names, record, strict=True))
        for i, name, process in self._converted:
            values[name] = process(record[i])
        state = instance_state(obj)
        state.key = identity if identity is not None else self.identity(record[self.id_index])
        if self._on_load:  # e.g. mutable JSON columns start tracking their parent
            self._on_load(state, None)
        return obj

    def refresh(self, obj: Entity, record: Sequence[Any]) -> None:
        """Overwrite a loaded entity with a fresh row (a locking read), as populate_existing."""
        fresh = self.build(record)
        state = instance_state(obj)
        values = {k: v for k, v in fresh.__dict__.items() if k != "_sa_instance_state"}
        obj.__dict__.update(values)
        mark_committed(state, obj.__dict__)
        if self._on_load:
            self._on_load(state, None)


def result_processor(type_: Any, dialect: Dialect) -> Processor:
    """The column type's result processing, with fast paths for the hot types of a row.

    asyncpg already returns `timestamptz` as UTC-aware datetimes, and an enum member is a
    dict lookup away: the generic TypeDecorator wrappers cost more than the fetch of a page.
    """
    if isinstance(type_, UtcDateTime):
        slow = type_.dialect_impl(dialect).result_processor(dialect, None)
        assert slow is not None

        def utc(value: Any) -> Any:
            if value is None or (isinstance(value, datetime) and value.tzinfo is UTC):
                return value
            return slow(value)

        return utc
    if isinstance(type_, EnumText):
        members = dict(type_.enum._value2member_map_)
        enum = type_.enum

        def member(value: Any) -> Any:
            if value is None:
                return None
            found = members.get(value)
            return found if found is not None else enum(value)

        return member
    process: Processor = type_.dialect_impl(dialect).result_processor(dialect, None)
    return process


class PgReads:
    """The compiled reads of one database, cached by shape (bounded by the query language)."""

    def __init__(self, dialect: Dialect, compiler: QueryCompiler) -> None:
        self.dialect = dialect
        self.compiler = compiler
        self._statements: dict[Any, Prepared] = {}
        self._loaders: dict[type[Entity], EntityLoader] = {}
        self._inserts: dict[type[Entity], RowInsert] = {}
        self._updates: dict[tuple[type[Entity], tuple[str, ...]], RowUpdate] = {}

    def update(self, cls: type[Entity], columns: tuple[str, ...]) -> RowUpdate:
        key = (cls, columns)
        found = self._updates.get(key)
        if found is None:
            found = self._updates[key] = RowUpdate(cls, columns, self.dialect)
        return found

    def insert(self, cls: type[Entity]) -> RowInsert:
        found = self._inserts.get(cls)
        if found is None:
            found = self._inserts[cls] = RowInsert(cls, self.dialect)
        return found

    def loader(self, cls: type[Entity]) -> EntityLoader:
        found = self._loaders.get(cls)
        if found is None:
            found = self._loaders[cls] = EntityLoader(cls, self.dialect)
        return found

    # ------------------------------------------------------------------ statements

    def get(
        self, cls: type[Entity], *, scoped: bool, include_deleted: bool, lock: bool
    ) -> Prepared:
        key = ("get", cls, scoped, include_deleted, lock)
        found = self._statements.get(key)
        if found is None:
            table = table_of(cls)
            stmt = select(table).where(table.c.id == bindparam(ID, type_=table.c.id.type))
            stmt = stmt.where(*_guards(cls, scoped, include_deleted))
            if lock:
                stmt = stmt.with_for_update()
            found = self._statements[key] = self._prepare(stmt)
        return found

    def page(
        self, bound: BoundQuery, *, scoped: bool, include_deleted: bool
    ) -> tuple[Prepared, dict[str, Any]]:
        shape, values = template(bound)
        found = self._cached(
            ("page", shape, scoped, include_deleted),
            lambda: self.compiler.select_page(shape, core=True).where(
                *_guards(bound.entity, scoped, include_deleted)
            ),
        )
        return found, _named(values)

    def count(
        self, bound: BoundQuery, *, scoped: bool, include_deleted: bool
    ) -> tuple[Prepared, dict[str, Any]]:
        shape, values = template(bound)
        found = self._cached(
            ("count", shape.entity, shape.filter, scoped, include_deleted),
            lambda: self.compiler.select_count(shape, core=True).where(
                *_guards(bound.entity, scoped, include_deleted)
            ),
        )
        return found, _named(values)

    def groups(
        self,
        cls: type[Entity],
        by: Sequence[str],
        flt: Filter | None,
        measures: Sequence[Filter],
        *,
        scoped: bool,
        others: Sequence[tuple[type[Entity], Filter | None]] = (),
    ) -> tuple[Prepared, dict[str, Any]]:
        values: list[Any] = []
        shape = filter_template(flt, values) if flt is not None else None
        measure_shapes = tuple(filter_template(m, values) for m in measures)
        other_shapes = tuple(
            (other, filter_template(f, values) if f is not None else None) for other, f in others
        )
        key = ("groups", cls, tuple(by), shape, measure_shapes, other_shapes, scoped)
        found = self._statements.get(key)
        if found is None:
            guarded = [(o, f, _guards(o, scoped, include_deleted=False)) for o, f in other_shapes]
            stmt = self.compiler.select_groups(
                cls, by, shape, measure_shapes, core=True, others=guarded
            )
            stmt = stmt.where(*_guards(cls, scoped, include_deleted=False))
            found = self._statements[key] = self._prepare(stmt)
        return found, _named(values)

    def _cached(self, key: Any, build: Callable[[], Select[Any]]) -> Prepared:
        found = self._statements.get(key)
        if found is None:
            found = self._statements[key] = self._prepare(build())
        return found

    def _prepare(self, stmt: Select[Any]) -> Prepared:
        compiled = stmt.compile(dialect=self.dialect)
        names = tuple(compiled.positiontup or ())
        processors = tuple(
            compiled.binds[name].type.dialect_impl(self.dialect).bind_processor(self.dialect)
            for name in names
        )
        # literals the compiler bound itself (`strpos(...) > 0`) are part of the shape
        constants = {
            name: bind.effective_value
            for name, bind in compiled.binds.items()
            if not (name.startswith("edu_p") or name in (TENANT, ID))
        }
        results = tuple(
            result_processor(column.type, self.dialect) for column in stmt.selected_columns
        )
        return Prepared(compiled.string, names, processors, constants, results)


def _guards(cls: type[Entity], scoped: bool, include_deleted: bool) -> list[ColumnElement[bool]]:
    """The unit of work's global filter (`guard.py`), its tenant a bound parameter."""
    return predicates(cls, tenant=BOUND if scoped else None, include_deleted=include_deleted)


def _named(values: list[Any]) -> dict[str, Any]:
    return {Param(i).name: value for i, value in enumerate(values)}


__all__ = ["ID", "TENANT", "EntityLoader", "PgReads", "Prepared"]
