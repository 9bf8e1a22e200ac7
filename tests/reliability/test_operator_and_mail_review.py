"""Review of issue 14 (production readiness): attacks by an independent reviewer.

Tests named `test_held_*` are attacks the implementation withstood; the others reproduced
defects of the reviewed main (8af9280) and failed there: a malformed Message-ID, link and
mail templates refused only when a mail is sent, a bad database URL or a colliding host
revision, and the login timing gaps.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edu_domain import AuthenticationFailed, ValidationError
from edu_domain.model import ids as ids_module
from edu_domain.model.ids import Uuid7Sequence
from edu_domain.ports import Mail, MailKind
from edu_domain.services import Deps, EduCore, NewUser, Scope, SecurityPolicy
from edu_infra.memory import InMemoryUnitOfWorkFactory
from edu_infra.memory.fakes import ManualClock, SequentialTokens
from edu_infra.security import Argon2PasswordHasher
from edu_infra.settings import ConfigurationError
from edu_infra.system import Uuid7Generator


def _edu(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The `edu` command of this virtualenv, with only `env`."""
    edu = Path(sys.executable).with_name("edu")
    return subprocess.run([str(edu), command], env=env, capture_output=True, text=True, timeout=60)


# ----------------------------------------------------------------------------- UUIDv7


def test_held_uuid7_strictly_increasing_when_the_clock_steps_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = iter([5_000, 5_000, 4_000, 1_000, 1_000, 9_000, 9_000, 2_000] * 1)
    monkeypatch.setattr(ids_module.time, "time_ns", lambda: next(clock) * 1_000_000)
    seq = Uuid7Sequence()
    values = [seq.next() for _ in range(8)]
    assert values == sorted(values) and len(set(values)) == 8
    assert all(v.version == 7 and v.variant == uuid.RFC_4122 for v in values)
    assert ids_module.uuid7_millis(values[-1]) == 9_000  # never goes back in time


def test_held_uuid7_counter_exhaustion_borrows_the_next_millisecond(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ids_module.time, "time_ns", lambda: 7_000 * 1_000_000)
    seq = Uuid7Sequence()
    first = seq.next()
    seq._counter = ids_module._COUNTER_MAX - 1
    a, b, c = seq.next(), seq.next(), seq.next()
    assert first < a < b < c
    assert ids_module.uuid7_millis(a) == 7_000 and ids_module.uuid7_millis(b) == 7_001


def test_held_uuid7_unique_and_per_thread_increasing_across_threads() -> None:
    seq = Uuid7Sequence()
    per_thread: list[list[uuid.UUID]] = [[] for _ in range(8)]

    def work(out: list[uuid.UUID]) -> None:
        for _ in range(10_000):
            out.append(seq.next())

    threads = [threading.Thread(target=work, args=(out,)) for out in per_thread]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [v for out in per_thread for v in out]
    assert len(set(everything)) == len(everything)
    assert all(out == sorted(out) for out in per_thread)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_held_uuid7_forked_child_does_not_repeat_parent_ids() -> None:
    from edu_domain.model.ids import uuid7

    parent_before = [uuid7() for _ in range(1000)]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read)
        data = b"".join(uuid7().bytes for _ in range(1000))
        os.write(write, data)
        os._exit(0)
    os.close(write)
    parent_after = [uuid7() for _ in range(1000)]
    chunks = b""
    while chunk := os.read(read, 65536):
        chunks += chunk
    os.waitpid(pid, 0)
    child = {uuid.UUID(bytes=chunks[i : i + 16]) for i in range(0, len(chunks), 16)}
    assert len(child) == 1000
    assert not child & (set(parent_before) | set(parent_after))


# ----------------------------------------------------------------------------- mail


def _mail(email: str = "pupil@example.org", token: str = "tok.en+/=") -> Mail:
    return Mail(
        kind=MailKind.EMAIL_VERIFICATION,
        organization_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        email=email,
        token=token,
        expires_at=datetime(2030, 1, 1, tzinfo=UTC),
    )


async def test_held_crlf_and_markup_in_email_stopped_at_registration() -> None:
    core = EduCore(
        Deps(
            uow=InMemoryUnitOfWorkFactory(),
            clock=ManualClock(),
            ids=Uuid7Generator(),
            tokens=SequentialTokens(),
            hasher=Argon2PasswordHasher(memory_cost=1024, time_cost=1, parallelism=1),
            policy=SecurityPolicy(),
        )
    )
    org = await core.organizations.create("Header School")
    for email in (
        "a@example.org\r\nBcc: victim@evil.org",
        "a@example.org\nSubject: pwned",
        "<script>@example.org",
        "a@example.org\u2028Bcc: x@evil.org",
    ):
        with pytest.raises(ValidationError):
            await core.users.register(
                Scope.system(org.id),
                NewUser(email=email, username="hdr", password="long enough pw 1"),
            )


def test_held_html_part_escapes_every_value() -> None:
    from edu_infra.mail import LinkTemplates, MailTemplates

    links = LinkTemplates("https://x.example/v?t={token}", "https://x.example/r?t={token}")
    email = "o'neil&{x}@example.org"  # the widest the email rule lets through
    mail = _mail(email=email, token="<b>\"'&")
    rendered = MailTemplates.default().render(mail, links.link(mail))
    assert '<b>"' not in rendered.html and "o'neil" not in rendered.html
    assert "&lt;b&gt;&quot;&#x27;&amp;" in rendered.html
    assert "o&#x27;neil&amp;" in rendered.html


@pytest.mark.parametrize(
    "sender", ["School <no-reply@school.example.org>", "no-reply@school.example.org"]
)
def test_the_message_id_is_well_formed_with_a_display_name_sender(sender: str) -> None:
    """README configures `EDU_SMTP_SENDER='School <no-reply@school.example.org>'`; the
    Message-ID domain was `sender.rpartition("@")[2]`, which kept the closing '>'."""
    from edu_infra.mail import LinkTemplates
    from edu_infra.mail.config import SmtpSettings
    from edu_infra.mail.smtp import SmtpNotifier

    links = LinkTemplates("https://x.example/v?t={token}", "https://x.example/r?t={token}")
    notifier = SmtpNotifier(SmtpSettings(host="localhost", sender=sender), links)
    message_id = str(notifier.message(_mail())["Message-ID"])
    assert message_id.startswith("<") and message_id.endswith("@school.example.org>")
    assert message_id.count(">") == 1 and message_id.count("<") == 1, message_id


@pytest.mark.parametrize("sender", ["no-reply", "a@b.org, c@d.org", "a@", "School <a@b.org"])
def test_a_sender_that_is_not_one_address_is_a_configuration_error(sender: str) -> None:
    from edu_infra.settings import Settings

    env = {
        "EDU_DATABASE_URL": "memory://",
        "EDU_SMTP_HOST": "localhost",
        "EDU_SMTP_SENDER": sender,
        "EDU_MAIL_VERIFY_URL": "https://x.example/{token}",
        "EDU_MAIL_RESET_URL": "https://x.example/{token}",
    }
    with pytest.raises(ConfigurationError, match="EDU_SMTP_SENDER"):
        Settings.from_mapping(env)


def _smtp_env(**overrides: str) -> dict[str, str]:
    return {
        "EDU_DATABASE_URL": "memory://",
        "EDU_SMTP_HOST": "localhost",
        "EDU_SMTP_SENDER": "a@example.org",
        "EDU_MAIL_VERIFY_URL": "https://x.example/{token}",
        "EDU_MAIL_RESET_URL": "https://x.example/{token}",
        **overrides,
    }


def test_a_link_template_that_works_at_send_time_is_accepted() -> None:
    """`{organization_id.hex}` is valid at send time (organization_id is a UUID); the check
    formatted with strings, so it raised a raw AttributeError out of the settings."""
    from edu_infra.settings import Settings

    verify = "https://x.example/{token}?o={organization_id.hex}&u={user_id!s}"
    settings = Settings.from_mapping(_smtp_env(EDU_MAIL_VERIFY_URL=verify))
    assert settings.mail_links is not None
    mail = _mail()
    link = settings.mail_links.link(mail)
    assert link.endswith(f"?o={mail.organization_id.hex}&u={mail.user_id}")


@pytest.mark.parametrize(
    "verify",
    [
        "https://x.example/{token}?o={organization_id.nope}",
        "https://x.example/{token}?u={user_id:d}",
        "https://x.example/{token}?u={user_id[0]}",
        "https://x.example/{token}?x={other}",
        "https://x.example/{token}?x={0}",
        "https://x.example/{token}?x={",
    ],
)
def test_a_link_template_that_fails_at_send_time_is_a_configuration_error(verify: str) -> None:
    from edu_infra.settings import Settings

    with pytest.raises(ConfigurationError, match="EDU_MAIL_VERIFY_URL"):
        Settings.from_mapping(_smtp_env(EDU_MAIL_VERIFY_URL=verify))


def test_health_with_a_bad_link_template_exits_2_in_one_line() -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        **_smtp_env(EDU_MAIL_VERIFY_URL="https://x.example/{token}?o={organization_id.nope}"),
    }
    run = _edu("health", env)
    assert "Traceback" not in run.stderr and run.returncode == 2, run.stderr[-400:]
    assert run.stderr.count("\n") == 1 and "EDU_MAIL_VERIFY_URL" in run.stderr


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("email_verification.txt", "Hello $fullname, $link\n"),
        ("password_reset.html", "<p>$link $</p>"),
        ("email_verification.subject.txt", "Welcome ${email"),
    ],
)
def test_a_bad_placeholder_in_the_template_dir_fails_at_start_up(
    tmp_path: Path, name: str, text: str
) -> None:
    """A replaced template with an unknown `$placeholder` was accepted at start-up and
    failed only when the first mail rendered, after the registration committed."""
    from edu_infra.mail import MailTemplates
    from edu_infra.settings import Settings

    (tmp_path / name).write_text(text)
    with pytest.raises(ValueError, match="placeholder"):
        MailTemplates.from_directory(tmp_path)
    with pytest.raises(ConfigurationError, match="EDU_MAIL_TEMPLATE_DIR"):
        Settings.from_mapping(_smtp_env(EDU_MAIL_TEMPLATE_DIR=str(tmp_path)))
    run = _edu("health", {"PATH": "", **_smtp_env(EDU_MAIL_TEMPLATE_DIR=str(tmp_path))})
    assert "Traceback" not in run.stderr and run.returncode == 2, run.stderr[-400:]
    assert "EDU_MAIL_TEMPLATE_DIR" in run.stderr and name in run.stderr


def test_a_good_template_dir_is_accepted_and_used(tmp_path: Path) -> None:
    from edu_infra.mail import MailTemplates
    from edu_infra.settings import Settings

    (tmp_path / "email_verification.txt").write_text("Hi $email: $link ($expires_at)\n")
    settings = Settings.from_mapping(_smtp_env(EDU_MAIL_TEMPLATE_DIR=str(tmp_path)))
    assert settings.mail_template_dir == str(tmp_path)
    rendered = MailTemplates.from_directory(tmp_path).render(_mail(), "https://l")
    assert rendered.text == "Hi pupil@example.org: https://l (2030-01-01 00:00 UTC)\n"


def test_a_template_dir_without_an_smtp_host_is_a_configuration_error(tmp_path: Path) -> None:
    from edu_infra.settings import Settings

    with pytest.raises(ConfigurationError, match="EDU_SMTP_HOST"):
        Settings.from_mapping(
            {"EDU_DATABASE_URL": "memory://", "EDU_MAIL_TEMPLATE_DIR": str(tmp_path)}
        )


# ----------------------------------------------------------------------------- operator errors


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://postgres@127.0.0.1:notaport/postgres",
        "postgresql+asyncpg://postgres:pw@[::1/postgres",
        "postgresql+asyncpg://postgres@127.0.0.1:70000/postgres",
    ],
)
def test_a_database_url_sqlalchemy_refuses_is_a_one_line_configuration_error(url: str) -> None:
    """It was SQLAlchemy's `ValueError: invalid literal for int()` traceback, exit 1."""
    from edu_infra.settings import Settings

    key = {"EDU_RLS_KEY": "0" * 64}
    with pytest.raises(ConfigurationError, match="EDU_DATABASE_URL"):
        Settings.from_mapping({"EDU_DATABASE_URL": url, **key})
    good = "postgresql+asyncpg://postgres@127.0.0.1/postgres"
    with pytest.raises(ConfigurationError, match="EDU_MIGRATION_DATABASE_URL"):
        Settings.from_mapping({"EDU_DATABASE_URL": good, "EDU_MIGRATION_DATABASE_URL": url, **key})
    for command in ("health", "migrate"):
        run = _edu(command, {"PATH": "", "EDU_DATABASE_URL": url, **key})
        assert "Traceback" not in run.stderr and run.returncode == 2, run.stderr[-400:]
        assert run.stderr.count("\n") == 1 and "EDU_DATABASE_URL" in run.stderr
        assert ":pw@" not in run.stderr


# ----------------------------------------------------------------------------- migrations


def _host_database(path: Path, revision: str = "0001") -> None:
    """A host database never migrated by edu-core: its own Alembic revision (the same id as
    one of edu-core's, as tests/host_alembic uses) and its own `organizations` table."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        db.execute("INSERT INTO alembic_version VALUES (?)", (revision,))
        db.execute("CREATE TABLE organizations (id INTEGER PRIMARY KEY, crm_ref TEXT)")


def _sqlite_state(path: Path) -> tuple[set[str], list[tuple[str, ...]]]:
    with sqlite3.connect(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        rows = list(db.execute("SELECT version_num FROM alembic_version"))
    return tables, rows


@pytest.mark.parametrize("revision", ["0001", "0003"])
async def test_adoption_never_steals_a_host_revision_that_collides_with_edu_core(
    tmp_path: Path, revision: str
) -> None:
    """adopt_legacy_version took the host's single '0001' row for edu-core's because a table
    named `organizations` existed, moved it to edu_alembic_version and DROPPED the host's
    alembic_version: the host's Alembic thought its database empty, and edu-core thought
    its 0001 had run. Now the row stays, and migrating stops on the conflicting table with
    a one-line SchemaConflict that changes nothing."""
    from edu_infra.sqlalchemy.migrate import upgrade_async
    from edu_infra.sqlalchemy.versioning import SchemaConflict

    path = tmp_path / "host.db"
    _host_database(path, revision)
    with pytest.raises(SchemaConflict) as caught:
        await upgrade_async(f"sqlite+aiosqlite:///{path}")
    message = str(caught.value)
    assert "\n" not in message and "organizations" in message, message
    tables, rows = _sqlite_state(path)
    assert tables == {"alembic_version", "organizations"}  # nothing created, nothing dropped
    assert rows == [(revision,)]


def test_edu_migrate_and_health_name_the_conflicting_table(tmp_path: Path) -> None:
    path = tmp_path / "host.db"
    _host_database(path)
    env = {"PATH": "", "EDU_DATABASE_URL": f"sqlite+aiosqlite:///{path}"}
    run = _edu("migrate", env)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr[-600:]
    line = run.stderr.strip().splitlines()[-1]
    assert line.startswith("error: cannot migrate") and "organizations" in line, run.stderr
    assert "migrated" not in run.stdout
    run = _edu("health", env)
    assert run.returncode == 1 and "database: CONFLICT (table organizations" in run.stdout
    assert _sqlite_state(path)[1] == [("0001",)]


async def test_a_host_revision_with_edu_tables_of_another_shape_is_not_adopted(
    tmp_path: Path,
) -> None:
    """All of edu-core's table names, but not its key columns: still not proof."""
    from sqlalchemy import create_engine

    from edu_infra.sqlalchemy.tables import metadata
    from edu_infra.sqlalchemy.versioning import adopt_legacy_version, legacy_revision

    path = tmp_path / "lookalike.db"
    _host_database(path)
    with sqlite3.connect(path) as db:
        for name in metadata.tables:
            if name != "organizations":
                db.execute(f"CREATE TABLE {name} (id INTEGER PRIMARY KEY)")
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        assert legacy_revision(connection) is None
        assert adopt_legacy_version(connection) is None
    engine.dispose()
    assert _sqlite_state(path)[1] == [("0001",)]


async def test_health_says_when_edu_core_tables_are_missing_behind_a_head_revision(
    tmp_path: Path,
) -> None:
    """The version row alone is no proof the schema is there."""
    from edu_infra.sqlalchemy.migrate import upgrade_async

    path = tmp_path / "edu.db"
    await upgrade_async(f"sqlite+aiosqlite:///{path}")
    env = {"PATH": "", "EDU_DATABASE_URL": f"sqlite+aiosqlite:///{path}"}
    run = _edu("health", env)
    assert run.returncode == 0 and "database: ok" in run.stdout, run.stdout + run.stderr
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE user_tokens")
    run = _edu("health", env)
    assert run.returncode == 1 and "database: INCOMPLETE" in run.stdout, run.stdout
    assert "no table user_tokens" in run.stdout


def test_health_on_a_sqlite_url_that_is_a_directory_says_so(tmp_path: Path) -> None:
    run = _edu("health", {"PATH": "", "EDU_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}"})
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert f"database: NOT A FILE ({tmp_path.resolve()} is a directory" in run.stdout


# ----------------------------------------------------------------------------- hashing


async def test_held_cancelled_logins_leak_no_threads_and_do_not_corrupt_the_counter() -> None:
    hasher = Argon2PasswordHasher(time_cost=2, memory_cost=8_192, parallelism=1, max_threads=2)
    core = EduCore(
        Deps(
            uow=InMemoryUnitOfWorkFactory(),
            clock=ManualClock(),
            ids=Uuid7Generator(),
            tokens=SequentialTokens(),
            hasher=hasher,
            # up to 40 attempts may complete before the cancel: no lockout may hide the check
            policy=SecurityPolicy(max_failed_logins=100, lockout=timedelta(minutes=5)),
        )
    )
    org, owner = await core.organizations.bootstrap(
        "Cancel School", NewUser(email="c@example.org", username="cancel", password="right pw 123")
    )
    scope = Scope.system(org.id)
    before = {t.name for t in threading.enumerate()}
    tasks = [
        asyncio.create_task(core.auth.authenticate(scope, "cancel", "wrong pw 123!"))
        for _ in range(40)
    ]
    await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    hash_threads = [t for t in threading.enumerate() if t.name.startswith("edu-hash")]
    assert len(hash_threads) <= 2, hash_threads
    # cancelled attempts never counted as failures beyond the ones that completed; and the
    # account is still usable with the right password (state not corrupted)
    await asyncio.sleep(0.5)
    result = await core.auth.authenticate(scope, "cancel", "right pw 123")
    assert result.user_id == owner.id if hasattr(result, "user_id") else result
    assert before <= {t.name for t in threading.enumerate()} | before
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            await core.auth.authenticate(scope, "cancel", "wrong pw 123!")
    await hasher.aclose()


class _CountingHasher:
    """FastHasher that counts its calls."""

    def __init__(self) -> None:
        from edu_infra.memory.fakes import FastHasher

        self._inner = FastHasher()
        self.hashes = self.verifies = 0

    def hash(self, password: str) -> str:
        self.hashes += 1
        return self._inner.hash(password)

    def verify(self, password: str, hashed: str) -> bool:
        self.verifies += 1
        return self._inner.verify(password, hashed)

    def needs_rehash(self, hashed: str) -> bool:
        return self._inner.needs_rehash(hashed)


class _CountingUow:
    """A unit-of-work factory that records what each sign-in asks of the database."""

    def __init__(self) -> None:
        self._inner = InMemoryUnitOfWorkFactory()
        self.log: list[str] = []

    def __getattr__(self, name: str) -> object:  # unscoped work (bootstrap) is not logged
        return getattr(self._inner, name)

    def __call__(self, **kwargs: object) -> object:
        outer = self

        class _Wrapped:
            async def __aenter__(self) -> object:
                outer.log.append("open")
                self._uow = await inner.__aenter__()
                real_get, real_commit = self._uow.get, self._uow.commit

                async def get(*args: object, **kw: object) -> object:
                    outer.log.append(f"get lock={kw.get('lock', False)}")
                    return await real_get(*args, **kw)

                async def commit() -> None:
                    outer.log.append("commit")
                    await real_commit()

                self._uow.get, self._uow.commit = get, commit
                return self._uow

            async def __aexit__(self, *exc: object) -> object:
                return await inner.__aexit__(*exc)

        inner = self._inner(**kwargs)  # type: ignore[arg-type]
        return _Wrapped()


async def _counted_core() -> tuple[EduCore, Scope, _CountingHasher, _CountingUow]:
    hasher, uow = _CountingHasher(), _CountingUow()
    core = EduCore(
        Deps(
            uow=uow,  # type: ignore[arg-type]
            clock=ManualClock(),
            ids=Uuid7Generator(),
            tokens=SequentialTokens(),
            hasher=hasher,
            policy=SecurityPolicy(max_failed_logins=100, require_verified_email=False),
        )
    )
    org, _ = await core.organizations.bootstrap(
        "Timing School", NewUser(email="t@example.org", username="known", password="right pw 123")
    )
    return core, Scope.system(org.id), hasher, uow


async def test_unknown_and_known_logins_cost_the_same_hashing_and_database_work() -> None:
    """A wrong password recorded the failure (a unit of work with a locked read and a
    commit) that an unknown login skipped; the first unknown login also hashed the dummy
    password lazily; a non-string password skipped the verify of a known user."""
    core, scope, hasher, uow = await _counted_core()
    hashes_before = hasher.hashes
    costs = {}
    for name, login, password in [
        ("unknown user", "nobody", "wrong pw 123!"),
        ("known user", "known", "wrong pw 123!"),
        ("unknown organization", None, "wrong pw 123!"),
        ("unknown user, non-string password", "nobody", 12345),
        ("known user, non-string password", "known", 12345),
    ]:
        uow.log.clear()
        verifies = hasher.verifies
        where = Scope.system(uuid.uuid4()) if login is None else scope
        with pytest.raises(AuthenticationFailed):
            await core.auth.authenticate(where, login or "known", password)  # type: ignore[arg-type]
        costs[name] = (hasher.verifies - verifies, list(uow.log))
    assert hasher.hashes == hashes_before  # the dummy hash was built with the core
    expected = (1, ["open", "open", "get lock=True", "commit"])
    assert all(cost == expected for cost in costs.values()), costs


async def test_reject_costs_a_verify_and_the_same_round_trips() -> None:
    core, _, hasher, uow = await _counted_core()
    uow.log.clear()
    verifies = hasher.verifies
    with pytest.raises(AuthenticationFailed):
        await core.auth.reject(None)
    assert hasher.verifies - verifies == 1
    assert uow.log == ["open", "get lock=True", "commit"]


def test_the_argon2_hasher_builds_its_dummy_hash_at_construction() -> None:
    hasher = Argon2PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    assert hasher.dummy_hash.startswith("$argon2id$")
    assert not hasher.verify("anything", hasher.dummy_hash)
