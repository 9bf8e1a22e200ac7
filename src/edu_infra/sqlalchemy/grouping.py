"""Grouped counts of a SQL unit of work (`count_by`, `tally`): one statement on the row path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edu_domain.model import Entity
from edu_domain.query import Filter, Group, Query, bind
from edu_domain.uow_checks import (
    check_entity_class,
    check_group_fields,
    check_measures,
    check_query,
)
from edu_infra.sqlalchemy.mapping import table_of
from edu_infra.sqlalchemy.rows import RowPath, shape_groups
from edu_infra.sqlalchemy.transaction import UowTransaction


async def grouped(
    tx: UowTransaction,
    rows: RowPath,
    cls: type[Entity],
    by: Sequence[str],
    query: Any,
    measures: Mapping[str, Filter] | None,
    totals: list[tuple[str, type[Entity], Query | None]],
) -> tuple[list[Group], dict[str, int] | None]:
    """Groups (one statement), and the totals when the statement could carry them."""
    names = check_group_fields(check_entity_class(cls), by)
    bound = bind(cls, check_query(query))
    measure_items = list(check_measures(cls, measures).items())
    filters = [flt for _, flt in measure_items]
    others = [(other, bind(other, q).filter) for _, other, q in totals]
    for other, _ in others:
        table_of(other)
    found = await tx.read(lambda: rows.groups(cls, names, bound.filter, filters, others))
    return shape_groups(found, len(names), [n for n, _ in measure_items], [n for n, *_ in totals])


__all__ = ["grouped"]
