"""`edu` / `python -m edu_infra`: what an operator needs. Reads the EDU_* environment.

edu migrate                      apply the schema migrations (PostgreSQL: and store EDU_RLS_KEY)
edu create-org NAME --admin-email E --admin-username U   (password from EDU_ADMIN_PASSWORD or a prompt)
edu health                       check the database (and its RLS key) and the cache; exit 1 if unhealthy
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Sequence

from edu_domain import DomainError
from edu_domain.services import NewUser
from edu_infra.container import build_container, describe, migrate_schema, shutdown
from edu_infra.settings import ConfigurationError
from edu_infra.sqlalchemy.factory import SqlUnitOfWorkFactory


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edu", description="edu-core operator commands")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "migrate",
        help="apply the schema migrations to EDU_MIGRATION_DATABASE_URL; on PostgreSQL, also"
        " store (or rotate to) EDU_RLS_KEY",
    )
    org = sub.add_parser("create-org", help="create an organization and its first administrator")
    org.add_argument("name")
    org.add_argument("--slug")
    org.add_argument("--admin-email", required=True)
    org.add_argument("--admin-username", required=True)
    org.add_argument("--admin-name")
    sub.add_parser("health", help="check the database and the cache")
    return parser


async def _migrate() -> int:
    container = build_container()
    try:
        await migrate_schema(container)
        print(f"migrated: {describe(container.settings())}")
    finally:
        await shutdown(container)
    return 0


async def _create_org(args: argparse.Namespace) -> int:
    password = os.environ.get("EDU_ADMIN_PASSWORD")
    if not password:
        try:
            password = getpass.getpass("admin password: ")
        except EOFError:
            print("no password: set EDU_ADMIN_PASSWORD or run in a terminal", file=sys.stderr)
            return 2
    container = build_container()
    try:
        core = container.core()
        org, account = await core.organizations.bootstrap(
            args.name,
            NewUser(
                email=args.admin_email,
                username=args.admin_username,
                password=password,
                full_name=args.admin_name,
            ),
            slug=args.slug,
        )
        print(
            f"organization {org.slug} ({org.id}); admin {account.user.username} ({account.user.id})"
        )
    finally:
        await shutdown(container)
    return 0


async def _health() -> int:
    container = build_container()
    try:
        settings = container.settings()
        ok = True
        if not settings.uses_memory_database:
            database_ok = await container.database().health_check()
            print(f"database: {'ok' if database_ok else 'UNAVAILABLE'}")
            ok &= database_ok
            factory = container.uow_factory()
            if database_ok and isinstance(factory, SqlUnitOfWorkFactory):
                accepted = await factory.rls_key_accepted()
                if accepted is not None:
                    verdict = "ok" if accepted else "REFUSED (EDU_RLS_KEY is not the migrated key)"
                    print(f"row-level security key: {verdict}")
                    ok &= accepted
                problems = await factory.boundary_problems() if accepted else []
                for problem in problems:
                    print(f"tenant boundary: UNSAFE ({problem})")
                ok &= not problems
        cache_ok = await container.cache().health_check()
        print(f"cache: {'ok' if cache_ok else 'UNAVAILABLE (requests fall back to the database)'}")
    finally:
        await shutdown(container)
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "migrate":
            return asyncio.run(_migrate())
        if args.command == "create-org":
            return asyncio.run(_create_org(args))
        return asyncio.run(_health())
    except ConfigurationError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    except DomainError as error:
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
