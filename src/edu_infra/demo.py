"""`make demo`: a short narrated run of the main flows through the public API.

Runs on whatever the configuration says (see `edu_infra.container`): by default a SQLite
file migrated on the fly and the in-memory cache; PostgreSQL and Redis when EDU_DATABASE_URL
and EDU_REDIS_URL point at them.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from edu_domain import DomainError, Query
from edu_domain.model import UserRole
from edu_domain.services import ContentSearch, EduCore, NewContent, NewUser, Scope
from edu_infra.memory.fakes import RecordingNotifier


def say(text: str) -> None:
    print(text, flush=True)


async def step(title: str, action: Callable[[], Awaitable[Any]]) -> Any:
    say(f"\n== {title}")
    return await action()


async def run_demo(core: EduCore, notifier: RecordingNotifier, where: str) -> None:
    say(f"edu-core demo on {where}")
    suffix = core.deps.ids.new_id().hex[-6:]
    org, boss = await step(
        "Bootstrap an organization (the tenant) with its first administrator",
        lambda: core.organizations.bootstrap(
            f"Springfield Elementary {suffix}",
            NewUser(email="skinner@springfield.example", username="skinner", password="pw 4 ever!"),
        ),
    )
    say(f"   organization {org.name!r} slug={org.slug} id={org.id}")
    admin = Scope(org.id, boss.user.id)  # the administrator acts: the policy table applies
    scope = Scope.anonymous(org.id)  # nobody signed in yet: mail tokens and passwords prove it

    teacher = await step(
        "The administrator registers a teacher (user + profile in one transaction, argon2id)",
        lambda: core.users.register(
            admin,
            NewUser(
                email="Edna.Krabappel@Springfield.example",
                username="edna",
                password="apple pie 1234",
                full_name="Edna Krabappel",
                role=UserRole.TEACHER,
                bio="Grade 4",
                skills=["Math", "History"],
            ),
        ),
    )
    user = teacher.user
    say(f"   {user.username} <{user.email}> role={user.role.value} status={user.status.value}")
    mail = notifier.last("verify", user.email)
    say(f"   verification mail sent to {mail.email} (token shown to the user only)")

    verified = await step(
        "Verify the email with the single-use token",
        lambda: core.verification.verify_email(scope, mail.token),
    )
    say(f"   email_verified={verified.email_verified} status={verified.status.value}")
    try:
        await core.verification.verify_email(scope, mail.token)
    except DomainError as error:
        say(f"   using the token again: {type(error).__name__}: {error}")

    login = await step(
        "Log in (records a session with ip and user agent)",
        lambda: core.auth.authenticate(
            scope, "edna", "apple pie 1234", ip_address="203.0.113.7", user_agent="demo/1.0"
        ),
    )
    say(f"   session {login.session.id} expires {login.session.expires_at:%Y-%m-%d %H:%M} UTC")
    principal = await core.auth.resolve(login.token)
    say(f"   the token resolves to user {principal.user_id} in org {principal.organization_id}")
    try:
        await core.auth.authenticate(scope, "edna", "wrong password")
    except DomainError as error:
        say(f"   a wrong password: {type(error).__name__}: {error}")
    actor = Scope(org.id, user.id)  # the teacher acts from here on
    sessions = await core.auth.get_active_sessions(actor, user.id)
    say(f"   active sessions: {len(sessions)}")
    try:
        await core.users.register(
            actor,
            NewUser(email="bart@springfield.example", username="bart", password="eat my shorts"),
        )
    except DomainError as error:
        say(f"   the teacher registering a student: {type(error).__name__}: {error}")

    imported_hash = core.deps.hasher.hash("imported password")
    students = await step(
        "Bulk create 50 students (an import: the system acts, Scope.system)",
        lambda: core.users.create_many(
            Scope.system(org.id),
            [
                NewUser(
                    email=f"student{i}@springfield.example",
                    username=f"student{i:02d}",
                    hashed_password=imported_hash,
                    email_verified=i % 3 != 0,
                    status="active" if i % 3 != 0 else "pending",
                )
                for i in range(50)
            ],
        ),
    )
    say(f"   created {len(students)} students")
    page = await core.users.get_active_users(actor, role=UserRole.STUDENT, limit=5)
    say(f"   first page of active students: {[u.username for u in page]}")

    drafts = []
    for title, tags in (
        ("Fractions for Beginners", ["math", "fractions"]),
        ("Fractions Quiz", ["math", "fractions", "quiz"]),
        ("The American Revolution", ["history"]),
    ):
        drafts.append(
            await core.content.create_draft(
                actor, NewContent(title=title, body=f"All about {title.lower()}.", tags=tags)
            )
        )
    say("\n== Create drafts, then publish two")
    for draft in drafts[:2]:
        published = await core.content.publish(actor, draft.id)
        say(f"   published {published.slug!r} at {published.published_at:%H:%M:%S}")

    found = await step(
        "Search content tagged math AND fractions",
        lambda: core.content.search(actor, ContentSearch(tags=["Math", "fractions"], limit=10)),
    )
    say(f"   {[c.title for c in found]}")
    published_count = await core.content.count(actor, Query.where(status="published"))
    say(f"   published content in this organization: {published_count}")

    try:
        await core.users.statistics(actor)
    except DomainError as error:
        say(f"\n   the teacher asking for statistics: {type(error).__name__}: {error}")
    stats = await step(
        "Organization statistics (the administrator)", lambda: core.users.statistics(admin)
    )
    say(f"   total={stats.total} by_role={dict(stats.by_role)} by_status={dict(stats.by_status)}")
    say(f"   verified={stats.verified} active_sessions={stats.active_sessions}")

    other = await core.organizations.create(f"Shelbyville Elementary {suffix}")
    leaked = await core.users.get_by_email(Scope.system(other.id), user.email)
    say(f"\n== Tenant isolation: another organization looking up {user.email!r}: {leaked}")

    revoked = await step(
        "Revoke all sessions", lambda: core.auth.revoke_all_sessions(actor, user.id)
    )
    say(f"   revoked {revoked} session(s)")
    say("\nDemo finished.")


def main() -> int:
    from edu_infra.container import open_core

    async def go() -> None:
        notifier = RecordingNotifier()
        async with open_core(notifier=notifier, migrate=True) as (core, where):
            await run_demo(core, notifier, where)

    asyncio.run(go())
    return 0


if __name__ == "__main__":
    sys.exit(main())
