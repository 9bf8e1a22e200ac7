"""`edu` / `python -m edu_infra`: what an operator needs. Reads the EDU_* environment.

edu migrate                      apply the schema migrations (PostgreSQL: and store EDU_RLS_KEY)
edu create-org NAME --admin-email E --admin-username U   (password from EDU_ADMIN_PASSWORD or a prompt)
edu health                       check the database (migrated? RLS key?) and the cache; exit 1 if unhealthy
edu relay [--once]               deliver the outbox's events until stopped (SIGTERM), or what is due now
edu outbox status|dead|retry     the outbox: events per state, dead letters, requeue dead letters

Problems an operator can fix (a missing extra, a bad setting, an unreachable or unmigrated
database, a role that may not migrate) are one line on stderr naming the cause and the
setting or extra to change, never a traceback (`--traceback` shows it). Exit codes: 0 done,
1 the database or a service is not ready, 2 configuration (settings, extras, usage).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import signal
import sys
import traceback
import uuid
from collections.abc import Sequence
from typing import Any

from edu_domain import DomainError
from edu_infra.extras import check_extras, extras_for, missing_extra
from edu_infra.settings import ConfigurationError, Settings, redact_url

OK, NOT_READY, CONFIGURATION = 0, 1, 2


class OperatorError(Exception):
    """A problem the operator fixes; the message is the whole story."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edu", description="edu-core operator commands")
    parser.add_argument(
        "--traceback", action="store_true", help="show the full traceback of a failure"
    )
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
    relay = sub.add_parser(
        "relay", help="deliver the outbox's events (a worker; SIGTERM or Ctrl-C stops it)"
    )
    relay.add_argument("--once", action="store_true", help="deliver what is due now, then exit")
    outbox = sub.add_parser("outbox", help="inspect the outbox; requeue dead letters")
    action = outbox.add_subparsers(dest="action", required=True)
    action.add_parser("status", help="how many events wait and how many are dead letters")
    dead = action.add_parser("dead", help="list dead letters (oldest first)")
    dead.add_argument("--limit", type=int, default=100)
    retry = action.add_parser("retry", help="requeue dead letters (the given keys, or --all)")
    retry.add_argument("keys", nargs="*", help="idempotency keys, as `edu outbox dead` lists")
    retry.add_argument("--all", action="store_true", help="requeue every dead letter")
    return parser


def _container() -> Any:
    from edu_infra.container import build_container

    return build_container()


def _fail_if_no_sqlite_file(settings: Settings) -> None:
    from edu_infra.diagnose import sqlite_file

    path = None if settings.uses_memory_database else sqlite_file(settings.database_url)
    if path is not None and not path.is_file():
        raise OperatorError(
            f"no SQLite file at {path.resolve()} (EDU_DATABASE_URL): run `edu migrate` first"
        )


async def _migrate(args: argparse.Namespace) -> int:
    from edu_infra.container import describe, migrate_schema, shutdown

    container = _container()
    settings: Settings = container.settings()
    try:
        await migrate_schema(container)
        where = redact_url(settings.migration_database_url)
        print(
            f"migrated: {where} ({settings.migration_url_setting}); serving: {describe(settings)}"
        )
    except Exception as error:
        _explained(
            error, settings.migration_database_url, settings.migration_url_setting, migrating=True
        )
    finally:
        await shutdown(container)
    return OK


async def _create_org(args: argparse.Namespace) -> int:
    from edu_domain.services import NewUser
    from edu_infra.container import shutdown

    password = os.environ.get("EDU_ADMIN_PASSWORD")
    if not password:
        try:
            password = getpass.getpass("admin password: ")
        except EOFError:
            raise OperatorError(
                "no password: set EDU_ADMIN_PASSWORD or run in a terminal"
            ) from None
    container = _container()
    settings: Settings = container.settings()
    try:
        _fail_if_no_sqlite_file(settings)
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
    except Exception as error:
        _explained(error, settings.database_url, "EDU_DATABASE_URL")
    finally:
        await shutdown(container)
    return OK


async def _health(args: argparse.Namespace) -> int:
    from edu_infra.container import shutdown
    from edu_infra.diagnose import check_database
    from edu_infra.sqlalchemy.factory import SqlUnitOfWorkFactory
    from edu_infra.sqlalchemy.replica_health import replica_lines

    container = _container()
    try:
        settings: Settings = container.settings()
        ok = True
        if not settings.uses_memory_database:
            verdict = await check_database(container.database(), settings.database_url)
            print(f"database: {verdict.line}")
            ok &= verdict.ok
            factory = container.uow_factory()
            factory = getattr(factory, "inner", factory)  # under telemetry's wrapper
            if verdict.ok and isinstance(factory, SqlUnitOfWorkFactory):
                accepted = await factory.rls_key_accepted()
                if accepted is not None:
                    line = "ok" if accepted else "REFUSED (EDU_RLS_KEY is not the migrated key)"
                    print(f"row-level security key: {line}")
                    ok &= accepted
                problems = await factory.boundary_problems() if accepted else []
                for problem in problems:
                    print(f"tenant boundary: UNSAFE ({problem})")
                ok &= not problems
                for line in await replica_lines(factory.database):
                    print(line)  # never unready for it: reads fall back to the primary
        cache_ok = await container.cache().health_check()
        print(f"cache: {'ok' if cache_ok else 'UNAVAILABLE (requests fall back to the database)'}")
    finally:
        await shutdown(container)
    return OK if ok else NOT_READY


def _outbox_relay(container: Any, settings: Settings) -> Any:
    from edu_infra.container import relay_of

    if settings.uses_memory_database:
        raise OperatorError("EDU_DATABASE_URL is memory://: no other process can see its outbox")
    _fail_if_no_sqlite_file(settings)
    relay = relay_of(container)
    if relay is None:
        raise OperatorError("the outbox is off (EDU_OUTBOX_ENABLED=false): nothing to relay")
    return relay


async def _relay(args: argparse.Namespace) -> int:
    from edu_infra.container import shutdown

    container = _container()
    settings: Settings = container.settings()
    try:
        relay = _outbox_relay(container, settings)
        if args.once:
            handled = await relay.drain()
            counts = await relay.store.counts()
            print(f"relayed: {handled} handled; {_states(counts)}")
            return OK
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopped.set)
        relay.start()
        print(f"relaying as {relay.owner} (SIGTERM or Ctrl-C stops)", flush=True)
        await stopped.wait()
        await relay.stop()
    except Exception as error:
        _explained(error, settings.database_url, "EDU_DATABASE_URL")
    finally:
        await shutdown(container)
    return OK


def _states(counts: Any) -> str:
    return ", ".join(f"{state.value}: {count}" for state, count in counts.items())


async def _outbox(args: argparse.Namespace) -> int:
    from edu_infra.container import shutdown

    container = _container()
    settings: Settings = container.settings()
    try:
        store = _outbox_relay(container, settings).store
        if args.action == "status":
            print(_states(await store.counts()))
        elif args.action == "dead":
            for dead in await store.dead_letters(limit=max(1, args.limit)):
                print(
                    f"{dead.key}  {dead.organization_id}  {dead.kind}  attempts={dead.attempts}"
                    f"  created={dead.created_at.isoformat()}  error={dead.last_error or '-'}"
                )
        else:
            if not args.keys and not args.all:
                raise OperatorError("name the dead letters to retry (their keys) or give --all")
            keys = None if args.all else [_uuid(key) for key in args.keys]
            now = container.clock().now()
            print(f"requeued: {await store.requeue(now=now, keys=keys)}")
    except Exception as error:
        _explained(error, settings.database_url, "EDU_DATABASE_URL")
    finally:
        await shutdown(container)
    return OK


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise OperatorError(f"not an idempotency key: {text!r}") from None


def _explained(error: Exception, url: str, url_setting: str, *, migrating: bool = False) -> None:
    """Re-raise `error` as an OperatorError when it is a known operator problem."""
    from edu_infra.diagnose import explain

    line = explain(error, url, url_setting, migrating=migrating)
    if line is None:
        raise error
    raise OperatorError(line) from error


class _OneLineFormatter(logging.Formatter):
    """Log records without tracebacks: the CLI reports failures itself, in one line."""

    def formatException(self, ei: Any) -> str:
        return ""

    def format(self, record: logging.LogRecord) -> str:
        record.exc_info, record.exc_text = None, None
        return super().format(record).rstrip()


def _configure_logging(full: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    form = "%(levelname)s %(name)s: %(message)s"
    handler.setFormatter(logging.Formatter(form) if full else _OneLineFormatter(form))
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)


_COMMANDS = {
    "migrate": _migrate,
    "create-org": _create_org,
    "health": _health,
    "relay": _relay,
    "outbox": _outbox,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _configure_logging(args.traceback)
    try:
        check_extras(extras_for(Settings.from_env()), f"edu {args.command}")
        return asyncio.run(_COMMANDS[args.command](args))
    except ConfigurationError as error:
        return _report("configuration error", error, CONFIGURATION, args.traceback)
    except ModuleNotFoundError as error:
        extra = missing_extra(error, f"edu {args.command}")
        if extra is None:
            raise
        return _report("configuration error", extra, CONFIGURATION, args.traceback)
    except OperatorError as error:
        return _report("error", error, NOT_READY, args.traceback)
    except DomainError as error:
        return _report(f"error: {type(error).__name__}", error, NOT_READY, args.traceback)


def _report(label: str, error: BaseException, code: int, full: bool) -> int:
    if full:
        traceback.print_exception(error)
    print(f"{label}: {error}", file=sys.stderr)
    return code
