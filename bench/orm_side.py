"""Peers: a plain SQLAlchemy declarative repository, and advanced-alchemy's async repository.

Both use their own declarative models on the same tables, a session per request, and
connect as the owner (no row-level security: the tenant is a WHERE clause, as usually
written), with `create_async_engine` defaults and a pool of 10.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

from advanced_alchemy.filters import LimitOffset, OrderBy
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Integer,
    String,
    Text,
    Uuid,
    and_,
    func,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from workload import CONCURRENCY, PAGE_LIMIT, PAGE_SKIP, POOL_SIZE, Workload

from edu_infra.memory import FastHasher

PASSWORD = "correct horse battery"


class Base(DeclarativeBase):
    pass


class Audit:
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_by: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    version: Mapped[int] = mapped_column(Integer(), default=1)


class PlainOrganization(Audit, Base):
    __tablename__ = "organizations"
    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(63))
    status: Mapped[str] = mapped_column(String(32))


class PlainUser(Audit, Base):
    __tablename__ = "users"
    organization_id: Mapped[uuid.UUID] = mapped_column(Uuid())
    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(254))
    username: Mapped[str] = mapped_column(String(32))
    hashed_password: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32), default="student")
    status: Mapped[str] = mapped_column(String(32), default="pending")
    email_verified: Mapped[bool] = mapped_column(Boolean(), default=False)
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failed_login_count: Mapped[int] = mapped_column(BigInteger(), default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PlainProfile(Audit, Base):
    __tablename__ = "user_profiles"
    organization_id: Mapped[uuid.UUID] = mapped_column(Uuid())
    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid())
    bio: Mapped[str | None] = mapped_column(Text())
    skills: Mapped[list[str]] = mapped_column(ARRAY(Text()), default=list)
    avatar_url: Mapped[str | None] = mapped_column(String(2048))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    locale: Mapped[str] = mapped_column(String(35), default="en")


class PlainSession(Audit, Base):
    __tablename__ = "login_sessions"
    organization_id: Mapped[uuid.UUID] = mapped_column(Uuid())
    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


def new_user(org: uuid.UUID, row: dict[str, Any], hashed: str, now: datetime) -> PlainUser:
    return PlainUser(
        organization_id=org,
        id=uuid.uuid4(),
        hashed_password=hashed,
        email_verified=False,
        failed_login_count=0,
        created_at=now,
        updated_at=now,
        version=1,
        **row,
    )


def new_profile(org: uuid.UUID, user_id: uuid.UUID, now: datetime) -> PlainProfile:
    return PlainProfile(
        organization_id=org,
        id=uuid.uuid4(),
        user_id=user_id,
        skills=[],
        timezone="UTC",
        locale="en",
        created_at=now,
        updated_at=now,
        version=1,
    )


def live(org: uuid.UUID) -> Any:
    return and_(PlainUser.organization_id == org, PlainUser.deleted_at.is_(None))


def stats_statement(org: uuid.UUID, since: datetime) -> Any:
    return (
        select(
            PlainUser.role,
            PlainUser.status,
            func.count(),
            func.count().filter(PlainUser.email_verified.is_(True)),
            func.count().filter(PlainUser.created_at >= since),
        )
        .where(live(org))
        .group_by(PlainUser.role, PlainUser.status)
        .order_by(PlainUser.role, PlainUser.status)
    )


def active_sessions(org: uuid.UUID, now: datetime) -> Any:
    return and_(
        PlainSession.organization_id == org,
        PlainSession.deleted_at.is_(None),
        PlainSession.revoked_at.is_(None),
        PlainSession.expires_at > now,
    )


class OrmBase:
    name = "orm"

    def __init__(self, w: Workload, url: str) -> None:
        self.w = w
        self.engine = create_async_engine(url, pool_size=POOL_SIZE, max_overflow=0)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.hasher = FastHasher()

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        await self.engine.dispose()

    async def concurrent(self) -> Any:
        await asyncio.gather(*(self.get_by_id() for _ in range(CONCURRENCY)))

    async def get_by_id(self) -> Any:
        raise NotImplementedError


class PlainRepository:
    """The usual hand-written repository over a session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, org: uuid.UUID, user_id: uuid.UUID) -> PlainUser | None:
        user = await self.session.get(PlainUser, user_id)
        if user is None or user.organization_id != org or user.deleted_at is not None:
            return None
        return user

    async def by_email(self, org: uuid.UUID, email: str) -> PlainUser | None:
        stmt = select(PlainUser).filter_by(organization_id=org, email=email, deleted_at=None)
        return (await self.session.scalars(stmt)).first()

    async def page(self, org: uuid.UUID, skip: int, limit: int) -> list[PlainUser]:
        stmt = (
            select(PlainUser)
            .filter_by(organization_id=org, status="active", deleted_at=None)
            .order_by(PlainUser.created_at.desc(), PlainUser.id.desc())
            .offset(skip)
            .limit(limit)
        )
        return list((await self.session.scalars(stmt)).all())

    async def after(self, org: uuid.UUID, position: tuple[Any, ...], limit: int) -> list[PlainUser]:
        stmt = (
            select(PlainUser)
            .where(live(org), tuple_(PlainUser.created_at, PlainUser.id) > position)
            .order_by(PlainUser.created_at, PlainUser.id)
            .limit(limit)
        )
        return list((await self.session.scalars(stmt)).all())

    async def count(self, org: uuid.UUID) -> int:
        stmt = (
            select(func.count())
            .select_from(PlainUser)
            .where(live(org), PlainUser.status == "active")
        )
        return int(await self.session.scalar(stmt) or 0)


class PlainSqlAlchemy(OrmBase):
    name = "sqlalchemy"

    async def get_by_id(self) -> Any:
        async with self.sessions() as session:
            user = await PlainRepository(session).get(self.w.org, self.w.next_member()[0])
        assert user is not None
        return user

    async def get_by_email(self) -> Any:
        async with self.sessions() as session:
            return await PlainRepository(session).by_email(self.w.org, self.w.next_member()[1])

    async def find_page(self) -> Any:
        async with self.sessions() as session:
            return await PlainRepository(session).page(self.w.org, PAGE_SKIP, PAGE_LIMIT + 1)

    async def keyset_page(self) -> Any:
        assert self.w.keyset_after is not None
        async with self.sessions() as session:
            return await PlainRepository(session).after(
                self.w.org, self.w.keyset_after, PAGE_LIMIT + 1
            )

    async def count(self) -> Any:
        async with self.sessions() as session:
            return await PlainRepository(session).count(self.w.org)

    async def statistics(self) -> Any:
        now = self.w.now
        async with self.sessions() as session:
            groups = (
                await session.execute(stats_statement(self.w.org, self.w.thirty_days_ago))
            ).all()
            sessions = await session.scalar(
                select(func.count())
                .select_from(PlainSession)
                .where(active_sessions(self.w.org, now))
            )
        return groups, sessions

    async def register(self) -> Any:
        org = self.w.register_org
        hashed = self.hasher.hash(PASSWORD)
        now = self.w.now
        async with self.sessions() as session:
            organization = await session.get(PlainOrganization, org)
            assert organization is not None
            assert organization.status == "active"
            user = new_user(org, self.w.new_user(self.name), hashed, now)
            session.add(user)
            await session.flush()  # no relationship tells the flush the order
            session.add(new_profile(org, user.id, now))
            await session.commit()

    async def update(self) -> Any:
        async with self.sessions() as session:
            user = await PlainRepository(session).get(self.w.org, self.w.next_member()[0])
            assert user is not None
            user.full_name = f"Renamed {self.w.serial()}"
            user.updated_at = self.w.now
            user.version += 1
            await session.commit()

    async def soft_delete(self) -> Any:
        org = self.w.delete_orgs[self.name]
        now = self.w.now
        async with self.sessions() as session:
            user = await PlainRepository(session).get(org, self.w.next_victim(self.name))
            assert user is not None
            stmt = select(PlainSession).where(
                active_sessions(org, now), PlainSession.user_id == user.id
            )
            for login in (await session.scalars(stmt)).all():
                login.revoked_at = now
            user.deleted_at = user.updated_at = now
            user.version += 1
            await session.commit()

    async def bulk(self) -> Any:
        org = self.w.bulk_org
        hashed = self.hasher.hash(PASSWORD)
        now = self.w.now
        async with self.sessions() as session:
            session.add_all(
                [new_user(org, row, hashed, now) for row in self.w.bulk_input(self.name)]
            )
            await session.commit()


class UserRepository(SQLAlchemyAsyncRepository[PlainUser]):
    model_type = PlainUser


class OrganizationRepository(SQLAlchemyAsyncRepository[PlainOrganization]):
    model_type = PlainOrganization


class ProfileRepository(SQLAlchemyAsyncRepository[PlainProfile]):
    model_type = PlainProfile


class SessionRepository(SQLAlchemyAsyncRepository[PlainSession]):
    model_type = PlainSession


class AdvancedAlchemy(OrmBase):
    name = "advanced_alchemy"

    async def get_by_id(self) -> Any:
        async with self.sessions() as session:
            user = await UserRepository(session=session).get(self.w.next_member()[0])
        assert user.organization_id == self.w.org
        assert user.deleted_at is None
        return user

    async def get_by_email(self) -> Any:
        async with self.sessions() as session:
            return await UserRepository(session=session).get_one_or_none(
                organization_id=self.w.org, email=self.w.next_member()[1], deleted_at=None
            )

    async def find_page(self) -> Any:
        async with self.sessions() as session:
            return await UserRepository(session=session).list(
                LimitOffset(limit=PAGE_LIMIT + 1, offset=PAGE_SKIP),
                OrderBy("created_at", "desc"),
                OrderBy("id", "desc"),
                organization_id=self.w.org,
                status="active",
                deleted_at=None,
            )

    async def keyset_page(self) -> Any:
        assert self.w.keyset_after is not None
        async with self.sessions() as session:
            return await UserRepository(session=session).list(
                live(self.w.org),
                tuple_(PlainUser.created_at, PlainUser.id) > self.w.keyset_after,
                LimitOffset(limit=PAGE_LIMIT + 1, offset=0),
                OrderBy("created_at", "asc"),
                OrderBy("id", "asc"),
            )

    async def count(self) -> Any:
        async with self.sessions() as session:
            return await UserRepository(session=session).count(
                organization_id=self.w.org, status="active", deleted_at=None
            )

    async def statistics(self) -> Any:
        now = self.w.now
        async with self.sessions() as session:
            groups = (
                await session.execute(stats_statement(self.w.org, self.w.thirty_days_ago))
            ).all()
            sessions = await SessionRepository(session=session).count(
                active_sessions(self.w.org, now)
            )
        return groups, sessions

    async def register(self) -> Any:
        org = self.w.register_org
        hashed = self.hasher.hash(PASSWORD)
        now = self.w.now
        async with self.sessions() as session:
            organization = await OrganizationRepository(session=session).get(org)
            assert organization.status == "active"
            user = await UserRepository(session=session).add(
                new_user(org, self.w.new_user(self.name), hashed, now)
            )
            await ProfileRepository(session=session).add(
                new_profile(org, user.id, now), auto_commit=True
            )

    async def update(self) -> Any:
        async with self.sessions() as session:
            repo = UserRepository(session=session)
            user = await repo.get(self.w.next_member()[0])
            assert user.organization_id == self.w.org
            user.full_name = f"Renamed {self.w.serial()}"
            user.updated_at = self.w.now
            user.version += 1
            await repo.update(user, auto_commit=True)

    async def soft_delete(self) -> Any:
        org = self.w.delete_orgs[self.name]
        now = self.w.now
        async with self.sessions() as session:
            repo = UserRepository(session=session)
            user = await repo.get(self.w.next_victim(self.name))
            assert user.organization_id == org
            assert user.deleted_at is None
            logins = await SessionRepository(session=session).list(
                active_sessions(org, now), PlainSession.user_id == user.id
            )
            for login in logins:
                login.revoked_at = now
            user.deleted_at = user.updated_at = now
            user.version += 1
            await repo.update(user, auto_commit=True)

    async def bulk(self) -> Any:
        org = self.w.bulk_org
        hashed = self.hasher.hash(PASSWORD)
        now = self.w.now
        async with self.sessions() as session:
            await UserRepository(session=session).add_many(
                [new_user(org, row, hashed, now) for row in self.w.bulk_input(self.name)],
                auto_commit=True,
            )
