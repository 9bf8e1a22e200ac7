"""Organization user statistics."""

from __future__ import annotations

from datetime import timedelta

from edu_domain.model import UserRole
from tests.unit.conftest import PASSWORD, World


async def test_statistics_count_by_role_status_verification_sessions_and_recency(
    world: World,
) -> None:
    await world.user("old", role=UserRole.TEACHER)
    world.clock.advance(timedelta(days=31))
    await world.user("st1")
    await world.user("st2", verified=False)
    await world.user("admin", role=UserRole.ADMIN)
    await world.core.auth.authenticate(world.scope, "st1", PASSWORD)
    await world.core.auth.authenticate(world.scope, "admin", PASSWORD)
    other = await world.new_org()
    await world.user("elsewhere", org=other)

    stats = await world.core.users.get_user_statistics(world.scope)
    assert stats.total == 4
    assert stats.by_role == {"teacher": 1, "student": 2, "admin": 1}
    assert stats.by_status == {"active": 3, "pending": 1}
    assert (stats.verified, stats.unverified) == (3, 1)
    assert stats.active_sessions == 2
    assert stats.new_last_30_days == 3


async def test_statistics_of_an_empty_organization_are_zero(world: World) -> None:
    stats = await world.core.users.statistics(world.scope)
    assert (stats.total, stats.verified, stats.active_sessions, stats.by_role) == (0, 0, 0, {})
