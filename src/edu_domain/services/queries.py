"""Specialised reads built as Query values (no repository methods)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from edu_domain.model.session import LoginSession
from edu_domain.ports import UnitOfWork
from edu_domain.query import F, Query


def active_sessions_query(now: datetime) -> Query:
    """Sessions neither revoked nor expired."""
    return Query.where(F("revoked_at").is_null(), F("expires_at").gt(now))


async def active_sessions(uow: UnitOfWork, user_id: UUID, now: datetime) -> list[LoginSession]:
    """A user's active sessions, newest first."""
    query = active_sessions_query(now).and_where(user_id=user_id).order_by("-created_at")
    # a user's live sessions are few: one read, not a server-side cursor
    return list((await uow.find(LoginSession, query)).items)
