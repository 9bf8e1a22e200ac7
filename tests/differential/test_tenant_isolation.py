"""No use case ever shows one organization another's rows or writes into another organization.

A hypothesis state machine (the rules of `tests/differential/machine.py`) performs every use
case over three organizations, on the memory adapter, SQLite and PostgreSQL, with ids taken
from ANY tenant (the rules pick the entity's own tenant most of the time, another tenant
otherwise) and random `Query` values. It checks:
- every result of a call made for tenant T: each entity in it (pages, lists, accounts,
  login results) belongs to T, a resolved principal is T's, every domain event published
  and every change reported to commit listeners by the call is T's;
- an unscoped snapshot of all tables, grouped by tenant: the rows of every tenant a step
  did not act for are unchanged (system work, such as creating an organization, may only
  add a new tenant). Taken after every step that used an id of another tenant (a foreign
  actor, user, content, session or token) and every step that committed anything, and
  after every third step regardless;
- `scoped_reads_match_an_explicit_tenant_filter`: for random queries, a tenant-scoped
  find/count/count_by gives exactly what an unscoped unit of work gives with the filter
  `organization_id == T` added (so no result ever includes a foreign row, and none of
  the tenant's own rows is lost);
- no exception other than the domain's comes out.
The executed step counts are printed at the end of the run (at least 2,000 in total).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import attrs
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule, run_state_machine_as_test

from edu_domain.errors import DomainError
from edu_domain.model import (
    ENTITY_TYPES,
    EducationalContent,
    LoginSession,
    Organization,
    User,
    UserProfile,
    UserToken,
)
from edu_domain.model.base import Entity
from edu_domain.query import ORDERABLE, And, F, describe
from edu_domain.services import Principal
from tests.conftest import POSTGRES_URL, require_service
from tests.differential.conftest import STEPS_PROPERTY
from tests.differential.machine import Call, UseCaseMachine, counted
from tests.differential.support import (
    Outcome,
    StepCounter,
    attempt,
    canon,
    describe_outcome,
    make_side,
    queries,
)

#: Per backend: (examples, steps per example). Memory is cheap, so it carries more steps.
FULL_CHECK_EVERY = 3
BUDGETS = {"memory": (50, 50), "sqlite": (10, 50), "postgres": (12, 50)}
Snapshot = dict[UUID, dict[tuple[str, UUID], Any]]


def tenant_of(entity: Entity) -> UUID:
    value: UUID = getattr(entity, type(entity).__tenant_field__)
    return value


def tenants_in(value: Any) -> Iterator[tuple[str, UUID]]:
    """(what, organization id) of every entity and principal inside a use-case result."""
    if isinstance(value, Entity):
        yield f"{type(value).__name__} {value.id}", tenant_of(value)
    elif isinstance(value, Principal):
        yield f"principal of session {value.session_id}", value.organization_id
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from tenants_in(item)
    elif attrs.has(type(value)):
        for field in attrs.fields(type(value)):
            yield from tenants_in(getattr(value, field.name))


class IsolationMachine(UseCaseMachine):
    """One adapter, three tenants; bound to a backend by `machine_for`."""

    def __init__(self) -> None:
        super().__init__()
        try:
            self.side = make_side(self.backend, self.open(self.backend), self.clock)
        except BaseException:
            self.teardown()  # hypothesis only tears down machines it could build
            raise
        self.last: Snapshot = {}
        self.acted_for: set[UUID | None] = set()
        self.steps = self.snapshots = 0
        self.commits_seen = 0

    def initial_tenants(self) -> tuple[str, ...]:
        return ("Springfield Elementary", "Shelbyville High", "Ogdenville Tech")

    def call(self, what: str, org: UUID | None, fn: Call) -> Outcome:
        self.acted_for.add(org)
        outcome = self.loop.run(attempt(lambda: fn(self.side)))
        mail = self.side.new_mail()
        self.note_mail(self.side, len(mail))
        if outcome.error is not None and not isinstance(outcome.error, DomainError):
            raise AssertionError(f"{what}: a non-domain error escaped: {outcome.error!r}")
        events, commits = self.side.new_events(), self.side.new_commits()
        if org is None:
            return outcome
        for found, tenant in tenants_in(outcome.value):
            if tenant != org:
                self.leak(what, org, f"result holds {found} of organization {tenant}", outcome)
        for event in events:
            if getattr(event, "organization_id", org) != org:
                self.leak(what, org, f"published {event!r}", outcome)
        for commit in commits:
            for change in commit:
                if change.organization_id != org:
                    self.leak(what, org, f"committed a change of another tenant: {change}", outcome)
        return outcome

    def leak(self, what: str, org: UUID, detail: str, outcome: Outcome) -> None:
        raise AssertionError(
            f"{self.backend}: {what} for organization {org}: {detail}\n"
            f"  call {describe_outcome(outcome)}"
        )

    # ------------------------------------------------------------------ writes

    @invariant()
    def no_write_lands_in_another_tenant(self) -> None:
        """Tenants the last step did not act for hold exactly the rows they held before.

        The snapshot is taken after every step that used an id of another tenant, every
        step that committed anything, and every `FULL_CHECK_EVERY`-th step regardless
        (reading every table after every read-only step would halve the steps per run).
        """
        self.steps += 1
        commits = len(self.side.listener.commits)
        due = self.foreign or commits != self.commits_seen or self.steps % FULL_CHECK_EVERY == 0
        self.foreign, self.commits_seen = False, commits
        if not due and self.last:
            self.acted_for = set()
            return
        self.snapshots += 1
        now = self.loop.run(self.snapshot())
        acted, self.acted_for = self.acted_for, set()
        for tenant in set(self.last) | set(now):
            if tenant in acted:
                continue
            before, after = self.last.get(tenant), now.get(tenant)
            if before is None and None in acted:
                continue  # system work (creating an organization) adds a tenant
            if before != after:
                changed = sorted(
                    key
                    for key in set(before or {}) | set(after or {})
                    if (before or {}).get(key) != (after or {}).get(key)
                )
                raise AssertionError(
                    f"{self.backend}: a step acting for {sorted(map(str, acted - {None}))} "
                    f"changed organization {tenant}: {changed}"
                )
        self.last = now

    async def snapshot(self) -> Snapshot:
        """Every committed row (deleted ones too), by tenant.

        SQL rows are read through an unscoped unit of work's session as plain column values
        (the column types still apply), several times cheaper than loading entities; the
        memory adapter's rows are read from its committed store.
        """
        if self.backend == "memory":  # the committed store is what unscoped reads see
            store = self.side.factory.store
            rows = {cls: [dict(row) for row in store.rows(cls).values()] for cls in ENTITY_TYPES}
        else:
            from sqlalchemy import select

            from edu_infra.sqlalchemy.tables import TABLES

            async with self.side.factory.unscoped() as uow:
                rows = {}
                for cls in ENTITY_TYPES:
                    result = await uow.session.execute(select(TABLES[cls]))
                    rows[cls] = [dict(row) for row in result.mappings()]
        state: Snapshot = {}
        for cls, found in rows.items():
            self.rows[cls] = found
            field = "id" if cls is Organization else "organization_id"
            for row in found:
                state.setdefault(row[field], {})[(cls.__name__, row["id"])] = row
        return state

    # ------------------------------------------------------------------ reads

    @rule(
        org=UseCaseMachine.orgs,
        cls=st.sampled_from(
            [User, UserProfile, LoginSession, UserToken, EducationalContent, Organization]
        ),
        include_deleted=st.booleans(),
        data=st.data(),
    )
    @counted
    def scoped_reads_match_an_explicit_tenant_filter(
        self, org: UUID, cls: type[Entity], include_deleted: bool, data: st.DataObject
    ) -> None:
        query = data.draw(queries(cls, self.observed(cls), paged=False), label="query")
        orderable = sorted(name for name, info in describe(cls).items() if info.kind in ORDERABLE)
        by = data.draw(st.lists(st.sampled_from(orderable), min_size=1, max_size=2), label="by")
        own = F(cls.__tenant_field__).eq(org)
        explicit = attrs.evolve(
            query, filter=own if query.filter is None else And((own, query.filter))
        )

        async def scoped(side: Any) -> Any:
            async with side.factory(tenant=org) as uow:
                found = await uow.find(cls, query, include_deleted=include_deleted)
                counted_ = await uow.count(cls, query, include_deleted=include_deleted)
                groups = await uow.count_by(cls, by, query)
                return [e.id for e in found], counted_, [canon(g) for g in groups]

        async def unscoped(side: Any) -> Any:
            async with side.factory.unscoped() as uow:
                found = await uow.find(cls, explicit, include_deleted=include_deleted)
                counted_ = await uow.count(cls, explicit, include_deleted=include_deleted)
                groups = await uow.count_by(cls, by, explicit)
                return [e.id for e in found], counted_, [canon(g) for g in groups]

        what = f"{cls.__name__} {query!r} include_deleted={include_deleted} by={by}"
        mine = self.call(f"scoped read {what}", org, scoped)
        theirs = self.call(f"unscoped read {what}", None, unscoped)
        if mine.ok != theirs.ok or (mine.ok and mine.value != theirs.value):
            raise AssertionError(
                f"{self.backend}: tenant-scoped read of {what} for {org} differs from an "
                f"explicit tenant filter:\n  scoped:   {describe_outcome(mine)}\n"
                f"  explicit: {describe_outcome(theirs)}"
            )


def machine_for(backend: str, url: str | None, counter: StepCounter) -> type[IsolationMachine]:
    return type(
        f"TenantIsolation{backend.title()}",
        (IsolationMachine,),
        {"backend": backend, "postgres_url": url, "counter": counter},
    )


@pytest.mark.parametrize(
    "backend", ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_no_use_case_crosses_tenants(
    backend: str, record_property: Callable[[str, object], None]
) -> None:
    url = require_service("PostgreSQL", POSTGRES_URL, 5432) if backend == "postgres" else None
    examples, steps = BUDGETS[backend]
    budget = settings(
        max_examples=int(os.environ.get("EDU_DIFFERENTIAL_EXAMPLES", examples)),
        stateful_step_count=steps,
        deadline=None,
        phases=(Phase.explicit, Phase.reuse, Phase.generate)
        if not os.environ.get("EDU_DIFFERENTIAL_SHRINK")
        else tuple(Phase),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    counter = StepCounter()
    try:
        run_state_machine_as_test(machine_for(backend, url, counter), settings=budget)
    finally:
        record_property(STEPS_PROPERTY, dict(counter.counts))
