"""The PostgreSQL driver path's statements: compiled once per shape, cached per database.

Reads (`params.template` makes a bound query's shape the cache key; values stay out of the
SQL), the single-row INSERT of `add` and the versioned UPDATEs of a flush. asyncpg keeps
each prepared statement per connection. Every read carries the guard (`guard.py`): the
tenant as a parameter, never part of the cached text, and the soft-delete filter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from attrs import frozen
from sqlalchemy import ColumnElement, Select, bindparam, select
from sqlalchemy.engine import Dialect

from edu_domain.model import Entity
from edu_domain.query import BoundQuery, Filter
from edu_infra.sqlalchemy.compiler import QueryCompiler
from edu_infra.sqlalchemy.guard import BOUND, TENANT_PARAM, predicates
from edu_infra.sqlalchemy.loader import EntityLoader
from edu_infra.sqlalchemy.mapping import table_of
from edu_infra.sqlalchemy.params import Param, filter_template, template
from edu_infra.sqlalchemy.results import Processor, result_processor
from edu_infra.sqlalchemy.row_writes import RowInsert, RowUpdate

TENANT = TENANT_PARAM
ID = "edu_id"


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


class PgStatements:
    """The compiled statements of one database, cached by shape (bounded by the query language)."""

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


__all__ = ["ID", "TENANT", "PgStatements", "Prepared"]
