"""Contract: `tally` (a grouped count plus counts of other entities) on every adapter."""

from __future__ import annotations

import pytest

from edu_domain.errors import ValidationError
from edu_domain.model import LoginSession, User, UserRole
from edu_domain.query import F, Query
from edu_infra.testing.harness import Harness, new_session


class TallyContract:
    """The `UnitOfWork` contract: tally. Needs a `harness` fixture."""

    async def test_tally_is_count_by_plus_the_tenants_totals(self, harness: Harness) -> None:
        mine, theirs = await harness.make_org(), await harness.make_org()
        teacher = await harness.make_user(mine, role=UserRole.TEACHER, email_verified=True)
        await harness.make_user(mine, role=UserRole.STUDENT)
        gone = await harness.make_user(mine, role=UserRole.STUDENT)
        other = await harness.make_user(theirs, role=UserRole.ADMIN)
        async with harness.uow(mine) as uow:
            await uow.add(new_session(teacher, harness.clock))
            revoked = new_session(teacher, harness.clock)
            revoked.revoked_at = harness.clock.now()
            await uow.add(revoked)
            await uow.delete(await uow.require(User, gone.id))
            await uow.commit()
        async with harness.uow(theirs) as uow:
            await uow.add(new_session(other, harness.clock))
            await uow.commit()
        measures = {"verified": F("email_verified").eq(True)}
        totals = {
            "sessions": (LoginSession, Query.where(F("revoked_at").is_null())),
            "all_sessions": (LoginSession, None),
        }
        async with harness.uow(mine) as uow:
            tally = await uow.tally(User, ["role"], measures=measures, totals=totals)
            groups = await uow.count_by(User, ["role"], measures=measures)
        assert list(tally.groups) == groups
        assert [(g.key, g.count) for g in groups] == [
            ((UserRole.STUDENT,), 1),
            ((UserRole.TEACHER,), 1),
        ]
        assert dict(tally.totals) == {"sessions": 1, "all_sessions": 2}

    async def test_tally_counts_the_totals_when_the_grouped_entity_has_no_rows(
        self,
        harness: Harness,
    ) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        async with harness.uow(org) as uow:
            await uow.add(new_session(user, harness.clock))
            await uow.commit()
        async with harness.uow(org) as uow:
            tally = await uow.tally(
                User,
                ["role"],
                Query.where(role=UserRole.ADMIN),
                totals={"sessions": (LoginSession, None)},
            )
        assert tally.groups == ()
        assert dict(tally.totals) == {"sessions": 1}

    @pytest.mark.parametrize(
        "totals",
        [
            {"": (LoginSession, None)},
            {"x": LoginSession},
            {"x": (dict, None)},
            {"x": (LoginSession, "revoked_at is null")},
            {"x": (LoginSession, Query.where(nope=1))},
            [("x", (LoginSession, None))],
        ],
    )
    async def test_tally_refuses_malformed_totals(self, harness: Harness, totals: object) -> None:
        org = await harness.make_org()
        async with harness.uow(org) as uow:
            with pytest.raises(ValidationError):
                await uow.tally(User, ["role"], totals=totals)  # type: ignore[arg-type]
